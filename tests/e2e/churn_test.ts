/** Hundreds of clients connecting, chatting and dropping; afterwards nothing is left behind. */

import { delay } from "@std/async/delay";
import { assert, assertEquals } from "@std/assert";
import { FLOOD_OFF, rawUpgrade, startTestServer, TestClient, within } from "./_client.ts";

const gc = (globalThis as { gc?: () => void }).gc;

function heapAfterCollection(): number {
  if (gc === undefined) throw new Error("Run with --v8-flags=--expose-gc (deno task test does)");
  gc();
  return Deno.memoryUsage().heapUsed;
}

Deno.test("churn: clients come, chat and drop; the server ends clean", async () => {
  const server = startTestServer({
    chat: { flood: FLOOD_OFF },
    // Deno keeps a socket that vanished without a close frame until its ping
    // timer fires (idle_timeout seconds later); without pings, what remains
    // afterwards is only what the server itself failed to let go.
    limits: { maxConnectionsPerIp: 1000, idleTimeout: 0 },
  });
  try {
    // A first wave warms up code paths so that the baseline is not taken cold.
    const wave = async (size: number): Promise<void> => {
      await Promise.all(Array.from({ length: size }, async (_, i) => {
        if (i % 3 === 0) {
          // Gone without a close frame: the TCP connection just ends.
          const { status, conn } = await rawUpgrade(server.port);
          assertEquals(status, 101);
          conn.close();
          return;
        }
        const client = await TestClient.connect(server.url);
        await client.waitFor((frame) => frame.body.startsWith("Welcome, "), "the welcome");
        client.send(`hello from ${i}`);
        client.send("!who");
        await client.waitFor((frame) => frame.body.startsWith("Connected Users: "), "!who");
        await client.close();
      }));
    };
    await wave(30);
    const heapBefore = heapAfterCollection();

    const started = performance.now();
    let clients = 0;
    while (clients < 600 && performance.now() - started < 4000) {
      await wave(60);
      clients += 60;
    }
    assert(clients >= 120, `only ${clients} clients in the time allowed`);

    await within(
      (async () => {
        while (true) {
          const { connections } = await (await fetch(`${server.httpUrl}/healthz`)).json();
          if (connections === 0 && server.chatroom.size === 0) return;
          await delay(20);
        }
      })(),
      "every connection to be gone",
      10_000,
    );

    const fresh = await server.join();
    fresh.client.send("!who");
    const who = await fresh.client.waitFor((frame) => frame.origin === "SERVER", "!who");
    assertEquals(who.body, `Connected Users: ${fresh.name}`);
    await fresh.client.close();

    const grown = heapAfterCollection() - heapBefore;
    assert(grown < 1024 * 1024, `heap grew by ${grown} bytes after ${clients} clients`);
  } finally {
    await server.close();
  }
});
