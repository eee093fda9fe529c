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
    // First waves warm up code paths so that what is measured is not the engine settling in.
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
    for (let warm = 0; warm < 3; warm++) await wave(60);

    const started = performance.now();
    let clients = 0;
    while (clients < 600 && performance.now() - started < 4000) {
      await wave(60);
      clients += 60;
    }
    assert(clients >= 120, `only ${clients} clients in the time allowed`);
    // As many again, measured: what the server keeps of each client would grow the heap as much
    // again, while the bounded things it remembers (recent presence ids, history) are full by now.
    const heapBefore = heapAfterCollection();
    for (let again = 0; again < clients; again += 60) await wave(60);

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
    assert(grown < 512 * 1024, `heap grew by ${grown} bytes over the last ${clients} clients`);
  } finally {
    await server.close();
  }
});
