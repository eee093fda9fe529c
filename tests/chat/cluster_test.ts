/**
 * The chat's cluster behaviour, through brokers that share their state in
 * memory: moderation decided where the target is, bans that hold a user's
 * address on their own instance and are lifted with the name, sessions
 * handed over between instances, and look-alike accounts kept apart.
 */

import { assertEquals } from "@std/assert";
import type { Chatroom } from "../../src/chat/mod.ts";
import type { User } from "../../src/chat/user.ts";
import { FakeCluster } from "../_fake_cluster.ts";
import { connect, createTestChatroom, FakeSink, receive, TEST_CHAT_CONFIG } from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";

/** Lets claims, handovers and kicks (settled on microtasks) finish. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

const FAST = { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 };

/** Two instances of open mode, with an operator password. */
function twoInstances(tokenMode = false): { cluster: FakeCluster; a: Chatroom; b: Chatroom } {
  const cluster = new FakeCluster();
  const auth = { tokenMode, expiryWarning: 60, operatorPassword: PASSWORD };
  const [a, b] = [1, 2].map(() =>
    createTestChatroom({
      broker: cluster.join(),
      auth,
      config: { ...TEST_CHAT_CONFIG, flood: FAST },
    })
  );
  return { cluster, a, b };
}

/** A user of `chatroom`, welcomed, from `address`. */
async function userOn(chatroom: Chatroom, name: string, address?: string) {
  const sink = new FakeSink();
  const user = connect(chatroom, sink, { name, address });
  await settled();
  return { sink, user };
}

/** Sends a text line and returns the bodies of what `user` was sent meanwhile. */
async function say(chatroom: Chatroom, user: User, sink: FakeSink, line: string) {
  sink.take();
  receive(chatroom, user, line);
  await settled();
  return sink.take().map(([, body]) => body);
}

async function moderatorOn(chatroom: Chatroom, name: string, address: string) {
  const { sink, user } = await userOn(chatroom, name, address);
  assertEquals(await say(chatroom, user, sink, `!op ${PASSWORD}`), ["You are now a moderator."]);
  return { sink, user };
}

Deno.test("moderation is decided where the target is", async (t) => {
  const { cluster, a, b } = twoInstances();
  const alpha = await moderatorOn(a, "ModAlpha", "10.0.0.1");
  const beta = await moderatorOn(b, "ModBeta", "10.0.0.2");

  await t.step("a moderator of another instance is outranked there", async () => {
    for (const line of ["!kick ModBeta", "!ban ModBeta 1h", "!mute ModBeta 1h"]) {
      const answer = await say(a, alpha.user, alpha.sink, line);
      assertEquals(answer, ["You may not moderate ModBeta."], line);
    }
    assertEquals(beta.sink.closed, undefined);
  });

  await t.step("a kick is done on the target's instance, then said done", async () => {
    const bob = await userOn(b, "Bob", "10.0.0.3");
    const answer = await say(a, alpha.user, alpha.sink, "!kick Bob bye");
    assertEquals(bob.sink.closed, "removed");
    assertEquals(answer, ["Bob was kicked by ModAlpha: bye", "Done: Bob was removed."]);
  });

  await t.step("a ban holds the user's address, and is lifted with the name", async () => {
    const bob = await userOn(b, "Bob", "10.0.0.3");
    await say(a, alpha.user, alpha.sink, "!ban Bob 1h spam");
    assertEquals(bob.sink.closed, "removed");
    const held = [...cluster.records.values()].map((record) =>
      record.kind === "room" ? [] : [record.kind, record.name, record.address, record.for]
    );
    assertEquals(held, [["ban", "Bob", undefined, undefined], [
      "ban",
      undefined,
      "10.0.0.3",
      "bob",
    ]]);
    assertEquals(a.refusalAtUpgrade(undefined, "10.0.0.3")?.kind, "banned");
    assertEquals(await say(a, alpha.user, alpha.sink, "!unban Bob"), [
      "Done: Bob is no longer banned.",
    ]);
    assertEquals(cluster.records.size, 0);
    assertEquals(b.refusalAtUpgrade(undefined, "10.0.0.3"), undefined);
  });

  await t.step("a mute holds the user's address on their instance", async () => {
    const carol = await userOn(b, "Carol", "10.0.0.4");
    await say(a, alpha.user, alpha.sink, "!mute Carol 5m");
    assertEquals(
      carol.sink.take().map(([, body]) => body).filter((body) => body.includes("muted")),
      [
        "You are muted for 5 minutes by ModAlpha: no reason given",
      ],
    );
    const carla = await userOn(a, "Carla", "10.0.0.4");
    assertEquals(await say(a, carla.user, carla.sink, "hi"), [
      "You are muted for 5 minutes more: your message was not sent.",
    ]);
  });
});

Deno.test("a session moves to the instance its account connects to", async () => {
  const { cluster, a, b } = twoInstances(true);
  const identity = (name: string) => ({ name, roles: new Set<never>(), expiresAt: undefined });
  const first = new FakeSink();
  connect(a, first, { identity: identity("Ann"), resumable: true });
  await settled();
  const second = new FakeSink();
  connect(b, second, { identity: identity("Ann"), resumable: true });
  await settled();
  assertEquals(first.closed, "replaced");
  assertEquals(
    second.events.find((event) => event.type === "welcome")?.body.startsWith("Welcome, Ann"),
    true,
  );
  assertEquals(cluster.names.get("ann")?.instance, "i2");

  // Another account whose name only looks like Ann's is refused on either instance.
  for (const chatroom of [a, b]) {
    const lookAlike = new FakeSink();
    assertEquals(chatroom.connect(lookAlike, { identity: identity("ANN") }), undefined);
    assertEquals(lookAlike.closed, "unauthorized");
    assertEquals(lookAlike.take(), [[
      "SERVER",
      "Your token was refused: the name ANN is too like Ann's, who is connected",
    ]]);
  }
});
