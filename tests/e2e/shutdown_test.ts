import { assertEquals } from "@std/assert";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { startServerProcess } from "./_process.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} says goodbye, closes every socket with 1001 and exits 0 within 3 s`, async () => {
    const server = await startServerProcess();
    const clients: TestClient[] = [];
    let v2: TestClient<V2Frame> | undefined;
    try {
      const wsUrl = server.httpUrl.replace(/^http/, "ws") + "/ws";
      for (let i = 0; i < 3; i++) {
        const client = await TestClient.connect(wsUrl);
        await client.waitFor((frame) => frame.body.startsWith("Welcome, "), "the welcome");
        clients.push(client);
      }
      v2 = await TestClient.connect<V2Frame>(wsUrl, "chat.v2");
      v2.send(JSON.stringify({ type: "hello" }));
      await v2.waitFor((frame) => frame.type === "welcome", "the v2 welcome");
      const started = performance.now();
      server.child.kill(signal);
      for (const client of clients) {
        await client.waitFor(
          (frame) =>
            frame.origin === "SERVER" && frame.body === "Server is shutting down... goodbye.",
          "the goodbye",
        );
        assertEquals((await within(client.closed, "the close")).code, 1001);
      }
      await v2.waitFor(
        (frame) => frame.type === "system" && frame.text === "Server is shutting down... goodbye.",
        "the v2 goodbye",
      );
      assertEquals((await within(v2.closed, "the v2 close")).code, 1001);
      const status = await within(server.child.status, "the process to exit", 3000);
      assertEquals(status.code, 0, server.output.join("\n"));
      assertEquals(performance.now() - started < 3000, true);
    } finally {
      await Promise.all([...clients, ...(v2 ? [v2] : [])].map((client) => client.close()));
      await server.kill();
    }
  });
}
