/** With `history.store: kv`, a restarted server still shows the recent conversation. */

import { assertEquals } from "@std/assert";
import { fromFileUrl, join } from "@std/path";
import { TestClient, type V2Frame } from "./_client.ts";
import { startServerProcess } from "./_process.ts";

const TEST_CONFIG = fromFileUrl(new URL("../../config/test/", import.meta.url));

Deno.test({
  name: "history in a Deno KV file survives a restart",
  // The KV file stays open in the child process only; its handles are not ours.
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-kv-" });
    try {
      await Deno.mkdir(join(dir, "test"));
      await Deno.copyFile(join(TEST_CONFIG, "chat.yaml"), join(dir, "test", "chat.yaml"));
      await Deno.writeTextFile(
        join(dir, "test", "server.yaml"),
        (await Deno.readTextFile(join(TEST_CONFIG, "server.yaml"))) +
          `history:\n  store: kv\n  path: ${join(dir, "data", "history.kv")}\n`,
      );
      const env = { CHAT_CONFIG_DIR: dir };

      let server = await startServerProcess({ env });
      let url = `${server.httpUrl.replace(/^http/, "ws")}/ws`;
      const ann = await TestClient.connect<V2Frame>(url, "chat.v2");
      ann.send(JSON.stringify({ type: "hello", name: "Ann" }));
      await ann.next();
      for (const text of ["one", "two"]) ann.send(JSON.stringify({ type: "say", text }));
      ann.send(JSON.stringify({ type: "join", room: "notes" }));
      ann.send(JSON.stringify({ type: "say", text: "in notes" }));
      await ann.waitFor((frame) => frame.text === "in notes");
      await ann.close();
      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0);

      server = await startServerProcess({ env });
      url = `${server.httpUrl.replace(/^http/, "ws")}/ws`;
      const bob = await TestClient.connect<V2Frame>(url, "chat.v2");
      try {
        bob.send(JSON.stringify({ type: "hello", name: "Bob" }));
        await bob.next();
        const lobby = [await bob.next(), await bob.next()].map((f) => [f.type, f.text, f.seq]);
        assertEquals(lobby, [["history", "one", 1], ["history", "two", 2]]);
        bob.send(JSON.stringify({ type: "join", room: "notes" }));
        await bob.next();
        assertEquals((await bob.next()).text, "in notes");
        bob.send(JSON.stringify({ type: "say", text: "three" }));
        assertEquals((await bob.next()).seq, 2);
      } finally {
        await bob.close();
        await server.kill();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
