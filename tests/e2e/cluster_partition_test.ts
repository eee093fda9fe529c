/**
 * A partitioned instance: its link to NATS cut (through a proxy the test
 * controls) for longer than `name_ttl`, NATS itself fine. The others let
 * its users go, and may give their names away; on heal, the name stays with
 * its new holder, the partitioned instance's user is told and renamed, and
 * nobody is left listed under a name they do not hold; a user who kept their
 * name is shown arriving again, once.
 */

import { assertEquals, assertNotEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable, startNats } from "./_nats.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";
import { startProxy } from "./_proxy.ts";

const ignore = !natsAvailable();

async function hello(instance: ServerProcess, name: string) {
  const client = await TestClient.connect<V2Frame>(
    `${instance.httpUrl.replace(/^http/, "ws")}/ws`,
    "chat.v2",
  );
  client.send(JSON.stringify({ type: "hello", name }));
  const welcome = await client.waitFor((frame) => frame.type === "welcome", "the welcome");
  return { client, welcome };
}

/** The members of the lobby as `client`'s instance lists them. */
async function members(client: TestClient<V2Frame>): Promise<string[]> {
  client.send(JSON.stringify({ type: "members" }));
  const frame = await client.waitFor((frame) => frame.type === "members", "the members");
  return (frame.members as string[]).toSorted();
}

/** Two instances on one nats-server: `a` directly, `c` through a proxy the test cuts and heals. */
async function withPartition(
  body: (
    setup: {
      a: ServerProcess;
      c: ServerProcess;
      proxy: ReturnType<typeof startProxy>;
      clients: TestClient<V2Frame>[];
    },
  ) => Promise<void>,
): Promise<void> {
  const nats = await startNats();
  const proxy = startProxy(Number(new URL(nats.url).port));
  const configDir = await testConfigDir({
    floodOff: true,
    chat: { session_linger: "0" },
    server:
      `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    name_ttl: 2\n    heartbeat: 0.5\n`,
  });
  const env = { CHAT_CONFIG_DIR: configDir };
  const instances: ServerProcess[] = [];
  const clients: TestClient<V2Frame>[] = [];
  try {
    instances.push(await startServerProcess({ env }));
    instances.push(
      await startServerProcess({
        env: { ...env, CHAT_NATS_SERVERS: `nats://127.0.0.1:${proxy.port}` },
      }),
    );
    const [a, c] = instances;
    await body({ a, c, proxy, clients });
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()));
    await Promise.allSettled(instances.map((instance) => instance.kill()));
    await proxy.close();
    await nats.dispose();
    await Deno.remove(configDir, { recursive: true });
  }
}

/** Waits until `watcher` is told that `name` left the room. */
function goodbyeOf(watcher: TestClient<V2Frame>, name: string): Promise<V2Frame> {
  return watcher.waitFor(
    (frame) => frame.type === "presence" && frame.action === "leave" && frame.from === name,
    `${name}'s goodbye`,
    10_000,
  );
}

Deno.test({
  name: "a partitioned instance's name given away meanwhile stays with its new holder on heal",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async ({ a, c, proxy, clients }) => {
      const { client: watcher } = await hello(a, "Watcher");
      const { client: first } = await hello(c, "Alice");
      clients.push(watcher, first);
      await watcher.waitFor((frame) => frame.type === "presence" && frame.from === "Alice");

      proxy.cut();
      // The others let the cut-off instance's users go...
      await goodbyeOf(watcher, "Alice");
      // ...and once her entry has lapsed, her name may be given to someone else.
      let second: TestClient<V2Frame> | undefined;
      for (let tries = 0; second === undefined; tries++) {
        const attempt = await hello(a, "Alice");
        clients.push(attempt.client);
        if (attempt.welcome.name === "Alice") second = attempt.client;
        else if (tries === 50) throw new Error("Alice's name was never given away");
        else {
          // Given another name: that session ends (nothing lingers here) before the next try.
          await attempt.client.close();
          await delay(100);
        }
      }

      proxy.heal();
      // The partitioned instance's Alice is told, and renamed; the new holder keeps the name.
      const refusal = await first.waitFor((frame) => frame.type === "error", "the refusal", 10_000);
      assertEquals([refusal.code, refusal.text], [
        "name_refused",
        'Cannot change your name to "Alice": it is taken',
      ]);
      const renamed = await first.waitFor(
        (frame) => frame.type === "presence" && frame.action === "rename",
        "the rename",
      );
      assertNotEquals(renamed.from, "Alice");
      // Everyone agrees on who is who (the new holder kept "Alice"), nobody listed under a lost name.
      await within(
        (async () => {
          while (true) {
            const [onA, onC] = [await members(second), await members(first)];
            const expected = ["Alice", String(renamed.from), "Watcher"].toSorted();
            if (
              JSON.stringify(onA) === JSON.stringify(expected) &&
              JSON.stringify(onC) === JSON.stringify(expected)
            ) return;
            await delay(100);
          }
        })(),
        "both instances to list the same members",
        10_000,
      );
    });
  },
});

Deno.test({
  name: "a partitioned instance's user who kept their name is shown arriving again on heal, once",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async ({ a, c, proxy, clients }) => {
      const { client: watcher } = await hello(a, "Watcher");
      const { client: carol } = await hello(c, "Carol");
      clients.push(watcher, carol);
      await watcher.waitFor((frame) => frame.type === "presence" && frame.from === "Carol");

      proxy.cut();
      await goodbyeOf(watcher, "Carol");
      proxy.heal();
      const back = await watcher.waitFor(
        (frame) => frame.type === "presence" && frame.from === "Carol",
        "Carol back",
        10_000,
      );
      assertEquals([back.action, back.text], ["join", "Carol has connected!"]);
      // Once: what Carol says next is the next thing about her.
      carol.send(JSON.stringify({ type: "say", text: "still here" }));
      const next = await watcher.waitFor((frame) => frame.from === "Carol", "Carol's message");
      assertEquals([next.type, next.text], ["message", "still here"]);
      assertEquals(await members(watcher), ["Carol", "Watcher"]);
    });
  },
});
