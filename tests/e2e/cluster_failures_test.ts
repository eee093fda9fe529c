/**
 * The cluster where it matters: NATS restarts (gracefully or killed),
 * simultaneous claims of one name, rooms nobody here is in, malformed
 * messages on the cluster's subjects, and more waiting than the outbox takes.
 */

import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { delay } from "@std/async/delay";
import { headers, wsconnect } from "@nats-io/nats-core";
import { type TestClient, type V2Frame, within } from "./_client.ts";
import { type Cluster, startCluster } from "./_cluster.ts";
import { natsAvailable } from "./_nats.ts";

const ignore = !natsAvailable();
const options = { ignore, sanitizeOps: false, sanitizeResources: false };

/** Says each text, in frames of 200 requests. */
function burst(client: TestClient<V2Frame>, texts: readonly string[]): void {
  for (let start = 0; start < texts.length; start += 200) {
    client.send(JSON.stringify(
      texts.slice(start, start + 200).map((text) => ({ type: "say", text })),
    ));
  }
}

/** The texts of the messages starting with `prefix` a client receives, until `last`. */
async function receivedUntil(
  client: TestClient<V2Frame>,
  prefix: string,
  last: string,
  timeoutMs: number,
): Promise<string[]> {
  const texts: string[] = [];
  await client.waitFor(
    (frame) => {
      if (frame.type !== "message" || !String(frame.text).startsWith(prefix)) return false;
      texts.push(frame.text as string);
      return frame.text === last;
    },
    `the message ${last}`,
    timeoutMs,
  );
  return texts;
}

Deno.test({
  name: "after NATS comes back, what was said while it was away reaches everyone within 2 s",
  ...options,
  async fn(t) {
    const maxOutbox = 600;
    const cluster = await startCluster({ instances: 2, nats: `    max_outbox: ${maxOutbox}\n` });
    try {
      for (const signal of ["SIGTERM", "SIGKILL"] as const) {
        for (const count of [0, 1, 8, 500, maxOutbox + 50]) {
          await t.step(
            `${count} messages during an outage, NATS stopped with ${signal}`,
            async () => {
              const prefix = `${signal}-${count}-`;
              const { client: sender } = await cluster.v2(0, { type: "hello" });
              const { client: reader } = await cluster.v2(1, { type: "hello" });
              await cluster.nats.stop(signal);
              await sender.waitFor((frame) =>
                frame.type === "system" && /degraded/.test(frame.text as string)
              );
              const health = await fetch(`${cluster.instances[0].httpUrl}/healthz`);
              assertEquals([health.status, (await health.json()).status], [200, "degraded"]);

              const texts = Array.from({ length: count }, (_, i) => prefix + i);
              burst(sender, texts);
              const accepted = texts.slice(0, maxOutbox);
              if (count > maxOutbox) {
                // The rest is refused, each with its reason, while waiting for NATS.
                let refused = 0;
                await sender.waitFor((frame) => {
                  if (frame.type === "error" && frame.code === "unavailable") refused++;
                  return refused === count - maxOutbox;
                }, "the refusals");
                assert(await cluster.metric(0, "chat_cluster_refused_total") >= count - maxOutbox);
              }

              await cluster.nats.start();
              const back = performance.now();
              const expected = count === 0 ? [`${prefix}after`] : accepted;
              if (count === 0) sender.send(JSON.stringify({ type: "say", text: `${prefix}after` }));
              const last = expected[expected.length - 1];
              const [atReader, atSender] = await Promise.all([
                receivedUntil(reader, prefix, last, 10_000),
                receivedUntil(sender, prefix, last, 10_000),
              ]);
              const elapsed = performance.now() - back;
              assertEquals(atReader, expected);
              assertEquals(atSender, expected);
              assert(
                elapsed < 2000,
                `the last message arrived ${Math.round(elapsed)} ms after NATS was back`,
              );
              const health2 = await (await fetch(`${cluster.instances[0].httpUrl}/healthz`)).json();
              assertEquals(health2.status, "ok");
              await sender.close();
              await reader.close();
            },
          );
        }
      }
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "100 simultaneous claims of one name on three instances: one winner, 99 told why",
  ...options,
  async fn() {
    const cluster = await startCluster({ instances: 3 });
    try {
      const observers = await Promise.all(
        [0, 1, 2].map((index) => cluster.v2(index, { type: "hello", name: `Watch${index}` })),
      );
      const claims = await Promise.all(
        Array.from({ length: 100 }, (_, i) => cluster.v2(i % 3, { type: "hello", name: "Zed" })),
      );
      const winners = claims.filter(({ welcome }) => welcome.name === "Zed");
      assertEquals(winners.length, 1);
      for (const { client, welcome } of claims) {
        if (welcome.name === "Zed") continue;
        const refusal = await client.waitFor((frame) => frame.type === "error");
        assertEquals([refusal.code, refusal.text], [
          "name_refused",
          `Cannot use the name "Zed": it is taken. You are ${welcome.name}.`,
        ]);
      }
      // Every observer sees exactly one arrival under that name, and no rename.
      const marker = await cluster.v2(0, { type: "hello", name: "Marker" });
      for (const { client } of observers) {
        const seen: V2Frame[] = [];
        await client.waitFor((frame) => {
          if (frame.type === "presence") seen.push(frame);
          return frame.type === "presence" && frame.from === "Marker";
        }, "the marker's arrival");
        assertEquals(seen.filter((frame) => frame.from === "Zed").map((frame) => frame.action), [
          "join",
        ]);
        assertEquals(seen.filter((frame) => frame.action === "rename"), []);
      }
      await marker.client.close();
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "two renames to one name on two instances at once: one succeeds, one is told why",
  ...options,
  async fn() {
    const cluster = await startCluster({ instances: 2 });
    try {
      for (let round = 0; round < 10; round++) {
        const name = `Kim${round}`;
        const left = await cluster.v2(0, { type: "hello" });
        const right = await cluster.v2(1, { type: "hello" });
        for (const { client } of [left, right]) {
          client.send(JSON.stringify({ type: "setname", name }));
        }
        // Each hears either of its own rename or of its own refusal.
        const outcome = await Promise.all(
          [left, right].map(({ client, welcome }) =>
            client.waitFor((frame) =>
              (frame.type === "presence" && frame.action === "rename" &&
                frame.oldName === welcome.name) ||
              (frame.type === "error" && frame.code === "name_refused")
            )
          ),
        );
        const renamed = outcome.filter((frame) => frame.type === "presence");
        const refused = outcome.filter((frame) => frame.type === "error");
        assertEquals([renamed.length, refused.length], [1, 1], JSON.stringify(outcome));
        assertEquals(renamed[0].from, name);
        await left.client.close();
        await right.client.close();
      }
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "an instance reads only the rooms its users are in",
  ...options,
  async fn() {
    const cluster = await startCluster({ instances: 2 });
    try {
      const { client: quiet } = await cluster.v2(0, { type: "hello", name: "Quiet" });
      quiet.send(JSON.stringify({ type: "join", room: "quiet" }));
      await quiet.waitFor((frame) => frame.type === "members" && frame.room === "quiet");
      const { client: busy } = await cluster.v2(1, { type: "hello", name: "Busy" });
      busy.send(JSON.stringify({ type: "join", room: "busy" }));
      await busy.waitFor((frame) => frame.type === "members" && frame.room === "busy");
      const before = await cluster.metric(0, "chat_cluster_notes_received_total");
      const busyBefore = await cluster.metric(1, "chat_cluster_notes_received_total");
      const texts = Array.from({ length: 300 }, (_, i) => `busy ${i}`);
      burst(busy, texts);
      await busy.waitFor((frame) => frame.text === "busy 299");
      quiet.send(JSON.stringify({ type: "say", text: "still here" }));
      await quiet.waitFor((frame) => frame.text === "still here");
      // Its own message, and maybe a late presence note of the lobby it is leaving: not 300.
      const read = await cluster.metric(0, "chat_cluster_notes_received_total") - before;
      assert(read >= 1 && read <= 3, `the quiet instance read ${read} notes`);
      assert(await cluster.metric(1, "chat_cluster_notes_received_total") >= busyBefore + 300);
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "malformed messages on the cluster's subjects are dropped, logged and counted",
  ...options,
  async fn() {
    const cluster: Cluster = await startCluster({ instances: 2 });
    const nc = await wsconnect({ servers: cluster.nats.wsUrl });
    try {
      const { client: ann, welcome } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      // Event ids start with their instance's id; a message numbers its batches in the room.
      const annsInstance = String(welcome.id).split(".")[0];
      ann.send(JSON.stringify({ type: "say", text: "before the garbage" }));
      for (const client of [ann, bob]) {
        await client.waitFor((frame) => frame.text === "before the garbage");
      }
      for (
        const [subject, data] of [
          ["chat.room.lobby.m", "not json at all"],
          // Numbered far ahead under a real instance's id, with nothing readable: no gap follows.
          [
            "chat.room.lobby.m",
            JSON.stringify({ from: annsInstance, n: 1_000_000, room: "lobby", m: [{ bogus: 1 }] }),
          ],
          ["chat.room.lobby.m", '[{"kind":"message","room":"lobby"}]'],
          [
            "chat.room.lobby.m",
            '[{"kind":"message","room":"elsewhere","id":"x","sentAt":1,"author":{"instance":"i","userId":1,"name":"n"},"text":"t","emote":false}]',
          ],
          ["chat.room.lobby.p", "[]"],
          ["chat.heartbeat", "{}"],
          // Longer than max_message_len (1000 here): no user could have sent it.
          [
            "chat.room.lobby.m",
            JSON.stringify([{
              kind: "message",
              room: "lobby",
              id: "forged.1",
              sentAt: 1,
              author: { instance: "i", userId: 1, name: "Ann" },
              text: "x".repeat(1001),
              emote: false,
            }]),
          ],
        ] as const
      ) {
        await nc.publish(subject, data);
      }
      await nc.flush();
      ann.send(JSON.stringify({ type: "say", text: "after the garbage" }));
      for (const client of [ann, bob]) {
        const texts: string[] = [];
        await client.waitFor((frame) => {
          if (frame.type === "message" || frame.type === "gap") {
            texts.push(`${frame.type} ${frame.text}`);
          }
          return frame.text === "after the garbage";
        });
        assertEquals(texts, ["message after the garbage"]);
      }
      for (const index of [0, 1]) {
        assert(await cluster.metric(index, "chat_cluster_malformed_total") >= 3);
        assertEquals(await cluster.metric(index, "chat_cluster_lost_total"), 0);
        const health = await (await fetch(`${cluster.instances[index].httpUrl}/healthz`)).json();
        assertEquals(health.status, "ok");
      }
      assertNotEquals(
        cluster.instances[0].output.find((line) => /could not be read/.test(line)),
        undefined,
      );
    } finally {
      await nc.close();
      await cluster.dispose();
    }
  },
});

Deno.test({
  name:
    "garbage sent ahead under an instance's next stream message ids swallows none of its messages",
  ...options,
  async fn() {
    const cluster: Cluster = await startCluster({ instances: 2 });
    const nc = await wsconnect({ servers: cluster.nats.wsUrl });
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      const seen = nc.subscribe("chat.room.lobby.m", { max: 1 });
      // The server has the subscription before anything is said: else the first could pass unseen.
      await nc.flush();
      ann.send(JSON.stringify({ type: "say", text: "first" }));
      let id = "";
      for await (const message of seen) id = message.headers?.get("Nats-Msg-Id") ?? "";
      assertNotEquals(id, "");
      await bob.waitFor((frame) => frame.text === "first", "the first message");
      // A process on NATS guesses the next ids: each number in the one seen, counted on.
      const parts = id.split(".");
      for (const [index, part] of parts.entries()) {
        if (!/^\d+$/.test(part)) continue;
        for (let step = 1; step <= 20; step++) {
          const guess = parts.with(index, String(Number(part) + step)).join(".");
          const header = headers();
          header.set("Nats-Msg-Id", guess);
          nc.publish("chat.room.lobby.m", "garbage", { headers: header });
        }
      }
      await nc.flush();
      for (const text of ["second", "third", "fourth"]) {
        ann.send(JSON.stringify({ type: "say", text }));
        await bob.waitFor((frame) => frame.text === text, `the message "${text}"`);
      }
    } finally {
      await nc.close();
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "messages NATS dropped before an instance read them are told as a gap, and counted",
  ...options,
  async fn() {
    // NATS keeps 3 stream messages per room: an instance that stops reading falls behind.
    const cluster = await startCluster({
      instances: 2,
      nats: "    kept_per_room: 3\n",
      chat: { history_size: "3" },
    });
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      const count = 400;
      cluster.instances[1].child.kill("SIGSTOP");
      try {
        // One stream message each: Ann waits for each echo before she says the next.
        for (let i = 0; i < count; i++) {
          ann.send(JSON.stringify({ type: "say", text: `m${i}` }));
          await ann.waitFor((frame) => frame.type === "message" && frame.text === `m${i}`);
        }
      } finally {
        cluster.instances[1].child.kill("SIGCONT");
      }
      const received: string[] = [];
      let gaps = 0;
      await bob.waitFor(
        (frame) => {
          if (frame.type === "gap") {
            assertEquals(frame.reason, "lost");
            assertEquals(
              frame.text,
              "Some messages of lobby were lost on their way between the servers.",
            );
            gaps++;
          }
          if (frame.type !== "message") return false;
          received.push(frame.text as string);
          return frame.text === `m${count - 1}`;
        },
        "the last message",
        10_000,
      );
      // What arrived came once and in order; the rest was told as one gap and counted.
      const numbers = received.map((text) => Number(text.slice(1)));
      assertEquals(numbers, [...numbers].sort((a, b) => a - b));
      assertEquals(new Set(numbers).size, numbers.length);
      assert(numbers.length < count, `all ${count} arrived: nothing was dropped`);
      assertEquals(gaps, 1);
      assertEquals(await cluster.metric(1, "chat_cluster_lost_total"), count - numbers.length);
      assertEquals(await cluster.metric(0, "chat_cluster_lost_total"), 0);
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "a NATS that takes small messages: batches fit it, and what cannot is refused, saying why",
  ...options,
  async fn() {
    const cluster = await startCluster({
      instances: 2,
      natsServer: { config: ["max_payload: 4096"] },
      chat: { max_message_len: "2000" },
    });
    try {
      // The operator is told at start what the NATS server's limit means for messages.
      const warning = cluster.instances[0].output.find((line) => line.includes("max_payload")) ??
        "";
      assertStringIncludes(
        warning,
        "takes messages of at most 4096 bytes (its max_payload): messages longer than 703 characters may be refused to their senders; raise max_payload in the NATS server's config, or lower max_message_len (2000) in ",
      );
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });

      // Sixty long messages at once: far more than one stream message NATS takes.
      const texts = Array.from({ length: 60 }, (_, i) => `long-${i}-`.padEnd(1000, "x"));
      burst(ann, texts);
      assertEquals(await receivedUntil(bob, "long-", texts.at(-1)!, 10_000), texts);

      // A message that cannot go even alone is refused to its sender, and nothing waits behind it.
      const huge = "€".repeat(2000);
      for (const request of [{ type: "say", text: huge }, { type: "pm", to: "Bob", text: huge }]) {
        ann.send(JSON.stringify(request));
        const refusal = await ann.waitFor((frame) => frame.type === "error", "the refusal");
        assertEquals([refusal.code, refusal.text], [
          "too_large",
          "Your message was not sent: it is longer than this chat can carry. Send it in parts.",
        ]);
      }
      assertEquals(await cluster.metric(0, "chat_cluster_oversized_total"), 2);
      ann.send(JSON.stringify({ type: "say", text: "after-1" }));
      assertEquals(await receivedUntil(bob, "after-", "after-1", 5_000), ["after-1"]);
      // Its acknowledgement may arrive just after the message itself: nothing stays behind.
      await within(
        (async () => {
          while (await cluster.metric(0, "chat_cluster_outbox") !== 0) await delay(50);
        })(),
        "an empty outbox",
        5_000,
      );
      const health = await fetch(`${cluster.instances[0].httpUrl}/healthz`);
      assertEquals((await health.json()).status, "ok");
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "heartbeats forged under a killed instance's id do not keep its users online",
  ...options,
  async fn() {
    const cluster = await startCluster({ instances: 2 });
    const nc = await wsconnect({ servers: cluster.nats.wsUrl });
    const idOf = (output: string[]) =>
      output.map((line) => /Joined the cluster as instance (\w+)/.exec(line)?.[1]).find(Boolean);
    const killed = idOf(cluster.instances[1].output);
    // Under the killed instance's id, and under one that sorts first and never announced itself.
    const forged = setInterval(() => {
      for (const instance of [killed, "00000000"]) {
        nc.publish("chat.heartbeat", JSON.stringify({ instance }));
      }
    }, 200);
    try {
      assertNotEquals(killed, undefined);
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      await cluster.v2(1, { type: "hello", name: "Cat" });
      await ann.waitFor((frame) => frame.type === "presence" && frame.from === "Cat");
      await cluster.instances[1].kill();
      const leave = await ann.waitFor(
        (frame) => frame.type === "presence" && frame.from === "Cat",
        "Cat's goodbye",
        10_000,
      );
      assertEquals([leave.action, leave.text], ["leave", "Cat has disconnected!"]);
      assert(await cluster.metric(0, "chat_cluster_malformed_total") >= 1);
    } finally {
      clearInterval(forged);
      await nc.close();
      await cluster.dispose();
    }
  },
});

Deno.test({
  name:
    "names of a killed instance retaken elsewhere: each user leaves exactly once, before returning",
  ...options,
  async fn() {
    // Tries that got another name end at once, so the lobby stays small enough for notices.
    const cluster = await startCluster({ instances: 3, chat: { session_linger: "0" } });
    try {
      const names = Array.from({ length: 20 }, (_, i) => `Gone${i}`);
      const watchers = [
        (await cluster.v2(0, { type: "hello", name: "WatchA" })).client,
        (await cluster.v2(1, { type: "hello", name: "WatchB" })).client,
      ];
      /** What each watcher saw of the users of the killed instance, and its markers. */
      const seen: string[][] = [[], []];
      const watch = (index: number, done: () => boolean, what: string) =>
        done() ? Promise.resolve() : watchers[index].waitFor(
          (frame) => {
            const from = String(frame.from);
            if (frame.type === "presence" && names.includes(from)) {
              seen[index].push(`${from} ${frame.action}`);
            }
            if (frame.type === "message") seen[index].push(`said ${frame.text}`);
            return done();
          },
          what,
          20_000,
        );
      const count = (index: number, line: string) =>
        seen[index].filter((entry) => entry === line).length;

      for (const name of names) await cluster.v2(2, { type: "hello", name });
      for (const index of [0, 1]) {
        await watch(
          index,
          () => names.every((name) => count(index, `${name} join`) === 1),
          "joins",
        );
      }
      await cluster.instances[2].kill();

      // Each user comes back on a survivor, trying again while the name is still held.
      await Promise.all(names.map(async (name, i) => {
        for (let tries = 0;; tries++) {
          const { client, welcome } = await cluster.v2(i % 2, { type: "hello", name });
          if (welcome.name === name) return;
          await client.close();
          if (tries === 100) throw new Error(`${name} was never given back`);
          await delay(200);
        }
      }));
      // Both survivors have let go of the killed instance (each says goodbye for its users)...
      for (const instance of cluster.instances.slice(0, 2)) {
        await within(
          (async () => {
            while (!instance.output.some((line) => /Instance \w+ is gone/.test(line))) {
              await delay(50);
            }
          })(),
          "the survivors to let go of the killed instance",
          10_000,
        );
      }
      // ...and everything they published before a marker has arrived with it.
      watchers[0].send(JSON.stringify({ type: "say", text: "marker A" }));
      watchers[1].send(JSON.stringify({ type: "say", text: "marker B" }));
      for (const index of [0, 1]) {
        await watch(
          index,
          () => count(index, "said marker A") === 1 && count(index, "said marker B") === 1,
          "the markers",
        );
      }
      for (const index of [0, 1]) {
        for (const name of names) {
          const story = seen[index].filter((line) => line.startsWith(`${name} `));
          assertEquals(
            story,
            [`${name} join`, `${name} leave`, `${name} join`],
            `watcher ${index}`,
          );
        }
      }
    } finally {
      await cluster.dispose();
    }
  },
});
