/**
 * Token mode across instances: one account's devices signed in through
 * different instances share one session, which lives on one of them; the
 * others relay their devices there. Killing either instance closes what
 * depended on it, and nothing is left behind.
 */

import { assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { type Cluster, startCluster, wsUrl } from "./_cluster.ts";
import { natsAvailable, type NatsOptions } from "./_nats.ts";
import type { ServerProcess } from "./_process.ts";
import { hs256 } from "../_tokens.ts";

const SECRET = "a-devices-test-secret-of-at-least-32-characters";
const TOKEN_MODE = { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: SECRET };

const { sign: tokenFor } = await hs256(SECRET);

/** A v2 client signed in as `name` on `instance` (resuming after the lobby's `seq`), and its welcome. */
async function signIn(instance: ServerProcess, name: string, seq?: unknown) {
  const client = await TestClient.connect<V2Frame>(wsUrl(instance), "chat.v2");
  const auth = await tokenFor(name);
  client.send(JSON.stringify(
    seq === undefined
      ? { type: "hello", auth }
      : { type: "resume", name, auth, room: { name: "lobby", seq } },
  ));
  try {
    const welcome = await client.waitFor((frame) => frame.type === "welcome", `${name}'s welcome`);
    return { client, welcome };
  } catch (error) {
    await client.close();
    throw error;
  }
}

/** Waits for the message `text`, keeping every frame passed on the way in `seen`. */
function message(client: TestClient<V2Frame>, text: string, seen: V2Frame[] = []) {
  return client.waitFor((frame) => {
    seen.push(frame);
    return frame.type === "message" && frame.text === text;
  }, `the message "${text}"`);
}

const say = (client: TestClient<V2Frame>, text: string) =>
  client.send(JSON.stringify({ type: "say", text }));

/** The value of `metric` on `instance`, polled until `expected` (10 s at most). */
async function metricBecomes(instance: ServerProcess, metric: string, expected: number) {
  let value = NaN;
  for (const started = Date.now(); Date.now() - started < 10_000; await delay(100)) {
    const page = await (await fetch(`${instance.httpUrl}/metrics`)).text();
    value = Number(page.split("\n").find((line) => line.startsWith(`${metric} `))?.split(" ")[1]);
    if (value === expected) return;
  }
  assertEquals(value, expected, `${metric} on ${instance.httpUrl}`);
}

/**
 * Runs `body` on a token-mode cluster of `instances`; the clients it pushes
 * to `clients` are closed, and the cluster disposed of, whatever happens.
 */
async function withCluster(
  options: { instances: number; natsServer?: NatsOptions },
  body: (cluster: Cluster, clients: TestClient<V2Frame>[]) => Promise<void>,
): Promise<void> {
  const cluster = await startCluster({ ...options, env: TOKEN_MODE });
  const clients: TestClient<V2Frame>[] = [];
  try {
    await body(cluster, clients);
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()));
    await cluster.dispose();
  }
}

Deno.test({
  name: "one account's devices on different instances share its session",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster({ instances: 3 }, async (cluster, clients) => {
      const [a, b, c] = cluster.instances;
      const bob = (await signIn(c, "Bob")).client;
      const laptop = (await signIn(a, "Alice")).client;
      clients.push(bob, laptop);
      await bob.waitFor((frame) => frame.type === "presence" && frame.from === "Alice");

      // The phone signs in through another instance: the laptop stays, the room sees no one new.
      const phone = await signIn(b, "Alice");
      clients.push(phone.client);
      assertEquals([phone.welcome.name, phone.welcome.room], ["Alice", "lobby"]);
      await metricBecomes(a, "chat_cluster_relayed_devices", 1);
      await metricBecomes(b, "chat_cluster_relayed_devices", 1);

      say(phone.client, "from the phone");
      for (const own of [phone.client, laptop]) {
        const line = await message(own, "from the phone");
        assertEquals([line.from, line.room], ["Alice", "lobby"]);
      }
      const bobSaw: V2Frame[] = [];
      await message(bob, "from the phone", bobSaw);
      assertEquals(bobSaw.filter((frame) => frame.type === "presence"), []);
      say(laptop, "from the laptop");
      await message(phone.client, "from the laptop");
      say(bob, "hi both");
      for (const own of [phone.client, laptop]) await message(own, "hi both");

      // A request answers the device that asked, wherever it is.
      phone.client.send(JSON.stringify({ type: "members" }));
      const members = await phone.client.waitFor((frame) => frame.type === "members");
      assertEquals((members.members as string[]).toSorted(), ["Alice", "Bob"]);

      // Joining a room through the phone moves the account: the laptop goes along.
      phone.client.send(JSON.stringify({ type: "join", room: "games" }));
      for (const own of [phone.client, laptop]) {
        const moved = await own.waitFor((frame) =>
          frame.type === "members" && frame.room === "games"
        );
        assertEquals(moved.members, ["Alice"]);
      }

      // A text client with the account's token, through the third instance, is one more device.
      const terminal = await TestClient.connect(wsUrl(c, `?token=${await tokenFor("Alice")}`));
      await terminal.waitFor((frame) => frame.body.startsWith("Welcome, Alice"), "the welcome");
      terminal.send("typed in a terminal");
      await message(laptop, "typed in a terminal");
      await message(phone.client, "typed in a terminal");
      await terminal.close();

      // The phone leaves: the session stays, with the laptop.
      await phone.client.close();
      await metricBecomes(a, "chat_cluster_relayed_devices", 0);
      say(laptop, "still here");
      await message(laptop, "still here");

      // The instance a device is relayed through stops: the device is told, the session stays.
      const tablet = (await signIn(b, "Alice")).client;
      clients.push(tablet);
      await metricBecomes(a, "chat_cluster_relayed_devices", 1);
      b.child.kill("SIGTERM");
      // Going away (the runtime's server or the relay says so first, each in its own words).
      assertEquals((await within(tablet.closed, "the tablet to close")).code, 1001);
      say(laptop, "after the tablet");
      await message(laptop, "after the tablet");
      await metricBecomes(a, "chat_cluster_relayed_devices", 0);
    }),
});

Deno.test({
  name: "a relayed device closes with 1013 when its session's instance dies, and signs in again",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster({ instances: 3 }, async (cluster, clients) => {
      const [a, b, c] = cluster.instances;
      const laptop = (await signIn(a, "Alice")).client;
      const phone = (await signIn(b, "Alice")).client;
      const bob = (await signIn(c, "Bob")).client;
      clients.push(laptop, phone, bob);
      say(phone, "before");
      await message(laptop, "before");
      const { seq } = await message(phone, "before");

      await a.kill();
      const closed = await within(phone.closed, "the phone to close", 10_000);
      assertEquals([closed.code, closed.reason], [1013, "try again in a few seconds"]);
      await bob.waitFor((frame) => frame.type === "presence" && frame.from === "Alice");
      say(bob, "while you were away");

      // Resuming (once the cluster let the dead instance's names go) starts afresh here, and
      // brings what was said since the phone's last message.
      let again: TestClient<V2Frame> | undefined;
      for (let attempt = 1; again === undefined; attempt++) {
        try {
          again = (await signIn(b, "Alice", seq)).client;
        } catch (error) {
          if (attempt === 20) throw error;
          await delay(300);
        }
      }
      clients.push(again);
      const missed = await again.waitFor((frame) => frame.text === "while you were away");
      assertEquals([missed.type, missed.from, missed.room], ["history", "Bob", "lobby"]);
      say(again, "back");
      await message(bob, "back");
      await metricBecomes(b, "chat_cluster_relayed_devices", 0);
    }),
});

Deno.test({
  name: "a device's instance dying leaves the session; past max_devices the oldest anywhere closes",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster({ instances: 2 }, async (cluster, clients) => {
      const [a, b] = cluster.instances;
      // The session starts on b; the oldest of its devices is soon one relayed from a.
      const first = (await signIn(b, "Alice")).client;
      const relayed = (await signIn(a, "Alice")).client;
      await first.close();
      const onB: TestClient<V2Frame>[] = [];
      for (let device = 3; device <= 6; device++) onB.push((await signIn(b, "Alice")).client);
      // A sixth device closes the oldest, wherever it is.
      const last = (await signIn(a, "Alice")).client;
      clients.push(relayed, ...onB, last);
      const told = await relayed.waitFor((frame) => frame.type === "error");
      assertEquals(told.code, "too_many_devices");
      const closed = await within(relayed.closed, "the oldest device to close");
      assertEquals([closed.code, closed.reason], [4000, "signed in on too many devices"]);
      await metricBecomes(b, "chat_cluster_relayed_devices", 1);

      // The device relayed through the instance that dies leaves the session; it goes on.
      await a.kill();
      await metricBecomes(b, "chat_cluster_relayed_devices", 0);
      say(onB[0], "after");
      await message(onB[3], "after");
    }),
});

Deno.test({
  name: "a NATS outage closes relayed devices with 1013; they are relayed again once it is back",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster({ instances: 2 }, async (cluster, clients) => {
      const [a, b] = cluster.instances;
      const laptop = (await signIn(a, "Alice")).client;
      const phone = (await signIn(b, "Alice")).client;
      clients.push(laptop, phone);
      say(phone, "before");
      await message(laptop, "before");

      await cluster.nats.stop();
      const closed = await within(phone.closed, "the phone to close");
      assertEquals([closed.code, closed.reason], [1013, "try again in a few seconds"]);
      await metricBecomes(a, "chat_cluster_relayed_devices", 0);

      await cluster.nats.start();
      await metricBecomes(a, "chat_cluster_connected", 1);
      await metricBecomes(b, "chat_cluster_connected", 1);
      const again = (await signIn(b, "Alice")).client;
      clients.push(again);
      await metricBecomes(a, "chat_cluster_relayed_devices", 1);
      say(again, "after");
      await message(laptop, "after");
    }),
});

Deno.test({
  name: "frames longer than NATS takes cross to and from a relayed device in parts",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster(
      { instances: 2, natsServer: { config: ["max_payload: 4096"] } },
      async (cluster, clients) => {
        const [a, b] = cluster.instances;
        const laptop = (await signIn(a, "Alice")).client;
        clients.push(laptop);
        const texts = Array.from({ length: 12 }, (_, i) => `${i} ${"é".repeat(600)}`);
        for (const text of texts) say(laptop, text);
        await message(laptop, texts.at(-1)!);

        // The phone's backlog comes in one frame of about 15 KB: four NATS messages' worth.
        const phone = (await signIn(b, "Alice")).client;
        clients.push(phone);
        const backlog: V2Frame[] = [];
        while (backlog.length < texts.length) {
          backlog.push(await phone.waitFor((frame) => frame.type === "history", "the backlog"));
        }
        assertEquals(backlog.map((frame) => frame.text), texts);

        // And one frame of ten messages from the phone, as long, goes the other way.
        const more = texts.slice(0, 10).map((text) => `again ${text}`);
        phone.send(JSON.stringify(more.map((text) => ({ type: "say", text }))));
        for (const text of more) await message(laptop, text);
      },
    ),
});

Deno.test({
  name: "the session's instance stopping closes its relayed devices with 1001",
  ignore: !natsAvailable(),
  fn: () =>
    withCluster({ instances: 2 }, async (cluster, clients) => {
      const [a, b] = cluster.instances;
      const laptop = (await signIn(a, "Alice")).client;
      const phone = (await signIn(b, "Alice")).client;
      clients.push(laptop, phone);
      a.child.kill("SIGTERM");
      // The relayed phone hears the session's own close, carried by the link; the laptop's socket
      // may be closed by the runtime's server first, in its own words.
      const closed = await within(phone.closed, "the phone to close");
      assertEquals([closed.code, closed.reason], [1001, "server shutting down"]);
      assertEquals((await within(laptop.closed, "the laptop to close")).code, 1001);
      await metricBecomes(b, "chat_cluster_relayed_devices", 0);
    }),
});
