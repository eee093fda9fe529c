/**
 * A partitioned instance: its link to NATS cut (through a proxy the test
 * controls) for longer than `name_ttl`, NATS itself fine. It lets its users'
 * names go (each user told, and closed with 1013) before the others take it
 * for gone and may give the names away: no name is ever held twice. On heal,
 * each goodbye has been shown once, every instance lists the same members,
 * and the names are free again.
 */

import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable, startNats } from "./_nats.ts";
import { startCluster } from "./_cluster.ts";
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
  timing = { nameTtl: 2, heartbeat: 0.5 },
): Promise<void> {
  const nats = await startNats();
  const proxy = startProxy(Number(new URL(nats.url).port));
  const { nameTtl, heartbeat } = timing;
  const configDir = await testConfigDir({
    floodOff: true,
    chat: { session_linger: "0" },
    server: `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    name_ttl: ${nameTtl}\n` +
      `    heartbeat: ${heartbeat}\n`,
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
  } catch (e) {
    for (const i of instances) console.log("----\n" + i.output.join("\n"));
    throw e;
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

const LAPSED = "This server lost contact with the rest of the chat for too long to keep the name";

/** Waits until `client` is told its name lapsed and is closed with 1013; resolves with when. */
async function letGo(client: TestClient<V2Frame>, name: string): Promise<number> {
  const told = await client.waitFor((frame) => frame.type === "error", "the notice", 10_000);
  assertEquals(told.code, "unavailable");
  assert(String(told.text).startsWith(`${LAPSED} ${name} for you`), String(told.text));
  const closed = await within(client.closed, "the close", 5000);
  assertEquals(closed.code, 1013);
  return performance.now();
}

/** The frames `watcher` gets until `name` arrives, that arrival last. */
async function until(watcher: TestClient<V2Frame>, name: string): Promise<V2Frame[]> {
  const seen: V2Frame[] = [];
  await watcher.waitFor(
    (frame) => {
      seen.push(frame);
      return frame.type === "presence" && frame.action === "join" && frame.from === name;
    },
    `${name}'s arrival`,
    10_000,
  );
  return seen;
}

/** How many of `frames` say `name` left. */
function leavesOf(frames: readonly V2Frame[], name: string): number {
  return frames.filter((frame) =>
    frame.type === "presence" && frame.action === "leave" && frame.from === name
  ).length;
}

/** Until both instances list exactly `expected` in the lobby. */
function agreeOn(
  clients: readonly TestClient<V2Frame>[],
  expected: readonly string[],
): Promise<void> {
  return within(
    (async () => {
      while (true) {
        const lists = await Promise.all(clients.map(members));
        if (lists.every((list) => JSON.stringify(list) === JSON.stringify(expected.toSorted()))) {
          return;
        }
        await delay(100);
      }
    })(),
    "every instance to list the same members",
    10_000,
  );
}

/** A watcher on `a`, and `name` on `c` (behind the proxy), once the watcher has seen them arrive. */
async function watched(
  { a, c, clients }: { a: ServerProcess; c: ServerProcess; clients: TestClient<V2Frame>[] },
  name: string,
) {
  const { client: watcher } = await hello(a, "Watcher");
  const { client: user, welcome } = await hello(c, name);
  clients.push(watcher, user);
  await watcher.waitFor((frame) => frame.type === "presence" && frame.from === name);
  return { watcher, user, welcome };
}

/** Asks `instance` for `name` until it is granted (another name each time before). */
async function grantedOn(
  instance: ServerProcess,
  name: string,
  clients: TestClient<V2Frame>[],
): Promise<TestClient<V2Frame>> {
  for (let tries = 0;; tries++) {
    const attempt = await hello(instance, name);
    clients.push(attempt.client);
    if (attempt.welcome.name === name) return attempt.client;
    if (tries === 100) throw new Error(`${name} was never given away`);
    await attempt.client.close();
    await delay(50);
  }
}

Deno.test({
  name: "a partitioned instance lets its users' names go before anyone else can be given them",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async (setup) => {
      const { a, c, proxy, clients } = setup;
      const { watcher, user: first } = await watched(setup, "Alice");

      proxy.cut();
      const letGoAt = letGo(first, "Alice");
      // Meanwhile, someone on the other side asks for her name, again and again.
      await grantedOn(a, "Alice", clients);
      const granted = performance.now();
      assert(await letGoAt < granted, "Alice was let go on the cut-off instance after the grant");

      proxy.heal();
      const { client: check } = await hello(c, "Check");
      const { client: lister } = await hello(a, "Lister");
      clients.push(check, lister);
      // The goodbye was said on both sides, and shown once.
      const seen = await until(watcher, "Check");
      assertEquals(leavesOf(seen, "Alice"), 1);
      // Nobody is left listed under a name they do not hold, on either side.
      await agreeOn([lister, check], ["Alice", "Check", "Lister", "Watcher"]);
    });
  },
});

Deno.test({
  name: "a partitioned instance's user is shown leaving once, and has their name back after heal",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async (setup) => {
      const { c, proxy, clients } = setup;
      const { watcher, user: carol } = await watched(setup, "Carol");

      proxy.cut();
      await letGo(carol, "Carol");
      const goodbye = await goodbyeOf(watcher, "Carol");
      assertEquals(goodbye.text, "Carol has disconnected!");
      proxy.heal();
      const { client: again, welcome } = await hello(c, "Carol");
      clients.push(again);
      assertEquals(welcome.name, "Carol");
      // Her own instance's goodbye, said while it was cut off, reaches the others now: not shown.
      const seen = await until(watcher, "Carol");
      assertEquals(leavesOf(seen, "Carol"), 0);
      const back = seen.at(-1)!;
      assertEquals([back.action, back.text], ["join", "Carol has connected!"]);
      again.send(JSON.stringify({ type: "say", text: "still here" }));
      const next = await watcher.waitFor((frame) => frame.from === "Carol", "Carol's message");
      assertEquals([next.type, next.text], ["message", "still here"]);
      await agreeOn([watcher, again], ["Carol", "Watcher"]);
    });
  },
});

Deno.test({
  name:
    "a user who leaves while their instance's link is frozen: nothing held up lands on the new holder",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async (setup) => {
      const { a, c, proxy, clients } = setup;
      const { user: xavier } = await watched(setup, "Xavier");

      // The link passes nothing, its sockets open: what Xavier's instance sends when he leaves
      // (his departure, and the release of his name) waits in them.
      proxy.freeze();
      await xavier.close();
      const heir = await grantedOn(a, "Xavier", clients);
      proxy.heal();
      // Once the link carries (a name is granted there), what was held has landed.
      const { client: check } = await hello(c, "Check");
      clients.push(check);
      const { welcome } = await hello(c, "Xavier");
      assertNotEquals(welcome.name, "Xavier");
      // The new holder keeps the name: never told otherwise, listed as himself everywhere.
      heir.send(JSON.stringify({ type: "members" }));
      const told: V2Frame[] = [];
      await heir.waitFor((frame) => told.push(frame) > 0 && frame.type === "members");
      assertEquals(told.filter((frame) => frame.type === "error"), []);
      await agreeOn([heir, check], ["Check", "Watcher", "Xavier", String(welcome.name)]);
    });
  },
});

Deno.test({
  name:
    "a user who leaves while their instance is cut off is shown leaving once, before the new holder",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async (setup) => {
      const { a, c, proxy, clients } = setup;
      const { watcher, user: xavier } = await watched(setup, "Xavier");

      proxy.cut();
      await xavier.close();
      await grantedOn(a, "Xavier", clients);
      proxy.heal();
      // His own instance's departure, said during the cut, arrives now, before Check's arrival.
      const { client: check } = await hello(c, "Check");
      clients.push(check);
      const seen = await until(watcher, "Check");
      const xaviers = seen.filter((frame) => frame.type === "presence" && frame.from === "Xavier");
      assertEquals(xaviers.map((frame) => frame.action), ["leave", "join"]);
    });
  },
});

Deno.test({
  name:
    "a handover asked of a frozen instance, and given up by the asker, is not done after the heal",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withPartition(async (setup) => {
      const { a, c, proxy, clients } = setup;
      const { watcher, user: xavier, welcome } = await watched(setup, "Xavier");

      // Longer than the asker waits (3 s), shorter than the lease (10 s here): Xavier keeps his
      // name, and his instance gets the request after it was given up.
      proxy.freeze();
      const elsewhere = await TestClient.connect<V2Frame>(
        `${a.httpUrl.replace(/^http/, "ws")}/ws`,
        "chat.v2",
      );
      clients.push(elsewhere);
      elsewhere.send(JSON.stringify({ type: "resume", name: "Xavier", token: welcome.token }));
      const other = await elsewhere.waitFor((frame) => frame.type === "welcome", "the welcome");
      assertNotEquals(other.name, "Xavier");
      proxy.heal();
      const { client: check } = await hello(c, "Check");
      clients.push(check);
      // His session is still his, where it was: what he says reaches the others.
      xavier.send(JSON.stringify({ type: "say", text: "still here" }));
      const said = await watcher.waitFor((frame) => frame.type === "message", "Xavier's message");
      assertEquals([said.from, said.text], ["Xavier", "still here"]);
      assertEquals(xavier.socket.readyState, WebSocket.OPEN);
    }, { nameTtl: 10, heartbeat: 1 });
  },
});

Deno.test({
  name: "NATS away longer than the lease: users are told and closed, nothing said is lost",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startCluster({ instances: 2 });
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      await ann.waitFor((frame) => frame.type === "presence" && frame.from === "Bob");
      await cluster.nats.stop();
      ann.send(JSON.stringify({ type: "say", text: "said while NATS was away" }));
      await Promise.all([letGo(ann, "Ann"), letGo(bob, "Bob")]);
      await cluster.nats.start();
      // The names are free again on either instance (once each has its link back and deleted the
      // entries it let go), and what Ann said before is there, once.
      const again = async (index: number, name: string) => {
        for (let tries = 0;; tries++) {
          const { client, welcome } = await cluster.v2(index, { type: "hello", name });
          if (welcome.name === name) return client;
          await client.close();
          if (tries === 50) throw new Error(`${name} never had their name back`);
          await delay(100);
        }
      };
      const bobAgain = await again(0, "Bob");
      const annAgain = await again(1, "Ann");
      // The backlog comes with the welcome; the members frame asked for after it ends the list.
      bobAgain.send(JSON.stringify({ type: "members" }));
      const seen: V2Frame[] = [];
      await bobAgain.waitFor((frame) => seen.push(frame) > 0 && frame.type === "members");
      const said = seen.filter((frame) => frame.type === "history" && frame.from === "Ann");
      assertEquals(said.map((frame) => frame.text), ["said while NATS was away"]);
      await annAgain.close();
      await bobAgain.close();
    } finally {
      await cluster.dispose();
    }
  },
});
