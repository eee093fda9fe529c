/**
 * The chat's cluster behaviour, through brokers that share their state in
 * memory: moderation decided where the target is, bans that hold a user's
 * address on their own instance and are lifted with the name, sessions
 * handed over between instances, and look-alike accounts kept apart.
 */

import { assertEquals } from "@std/assert";
import type { MessageNote, PresenceNote } from "../../src/broker/types.ts";
import type { Chatroom } from "../../src/chat/mod.ts";
import { createMetrics } from "../../src/metrics.ts";
import type { ChatEvent } from "../../src/vocabulary/events.ts";
import type { User } from "../../src/chat/user.ts";
import { FakeCluster } from "../_fake_cluster.ts";
import { connect, createTestChatroom, FakeSink, receive, TEST_CHAT_CONFIG } from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";

/** Whether an event is the welcome of a session. */
const isWelcome = (event: ChatEvent) => event.type === "welcome";

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

/** A user of `chatroom`, welcomed (the cluster granted the name), from `address`. */
async function userOn(chatroom: Chatroom, name: string, address?: string) {
  const sink = new FakeSink();
  const user = connect(chatroom, sink, { name, address });
  await sink.waitFor(isWelcome, "welcome");
  return { sink, user };
}

/**
 * Sends a text line, waits for the last of the answers `expected`, and
 * checks that `user` was sent exactly those meanwhile.
 */
async function answers(
  { chatroom, user, sink }: { chatroom: Chatroom; user: User; sink: FakeSink },
  line: string,
  expected: string[],
): Promise<void> {
  sink.take();
  receive(chatroom, user, line);
  await sink.waitFor((event) => event.body === expected.at(-1), expected.at(-1));
  assertEquals(sink.take().map(([, body]) => body), expected, line);
}

async function moderatorOn(chatroom: Chatroom, name: string, address: string) {
  const { sink, user } = await userOn(chatroom, name, address);
  await answers({ chatroom, user, sink }, `!op ${PASSWORD}`, ["You are now a moderator."]);
  return { chatroom, sink, user };
}

Deno.test("moderation is decided where the target is", async (t) => {
  const { cluster, a, b } = twoInstances();
  const alpha = await moderatorOn(a, "ModAlpha", "10.0.0.1");
  const beta = await moderatorOn(b, "ModBeta", "10.0.0.2");

  await t.step("a moderator of another instance is outranked there", async () => {
    for (const line of ["!kick ModBeta", "!ban ModBeta 1h", "!mute ModBeta 1h"]) {
      await answers(alpha, line, ["You may not moderate ModBeta."]);
    }
    assertEquals(beta.sink.closed, undefined);
  });

  await t.step("a rank is asked of the instance where its user is, not remembered", async () => {
    const dan = await userOn(b, "Dan", "10.0.0.5");
    // Made a moderator there without a word to the names the cluster shares.
    dan.user.roles.add("moderator");
    await answers(alpha, "!ban Dan 1h", ["You may not moderate Dan."]);
    await answers(alpha, "!kick Dan", ["You may not moderate Dan."]);
    assertEquals(dan.sink.closed, undefined);
  });

  await t.step("a kick is done on the target's instance, then said done", async () => {
    const bob = await userOn(b, "Bob", "10.0.0.3");
    await answers(alpha, "!kick Bob bye", [
      "Bob was kicked by ModAlpha: bye",
      "Done: Bob was removed.",
    ]);
    assertEquals(bob.sink.closed, "removed");
  });

  await t.step("a ban holds the user's address, and is lifted with the name", async () => {
    const bob = await userOn(b, "Bob", "10.0.0.3");
    await answers(alpha, "!ban Bob 1h spam", [
      "Bob was banned by ModAlpha: spam",
      "Done: Bob is banned for 1 hour.",
    ]);
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
    await answers(alpha, "!unban Bob", ["Done: Bob is no longer banned."]);
    assertEquals(cluster.records.size, 0);
    assertEquals(b.refusalAtUpgrade(undefined, "10.0.0.3"), undefined);
  });

  await t.step("a mute holds the user's address on their instance", async () => {
    const carol = await userOn(b, "Carol", "10.0.0.4");
    await answers(alpha, "!mute Carol 5m", ["Done: Carol is muted for 5 minutes."]);
    const muted = "You are muted for 5 minutes by ModAlpha: no reason given";
    await carol.sink.waitFor((event) => event.body === muted, muted);
    const carla = await userOn(a, "Carla", "10.0.0.4");
    await answers({ chatroom: a, ...carla }, "hi", [
      "You are muted for 5 minutes more: your message was not sent.",
    ]);
  });
});

Deno.test("slow mode remembers a user who comes back through another instance", async () => {
  const { a, b } = twoInstances();
  const alpha = await moderatorOn(a, "ModAlpha", "10.0.0.1");
  await answers(alpha, "!slow 30", [
    "ModAlpha set slow mode in lobby: one message every 30 s per user.",
  ]);
  const first = await userOn(b, "Sam", "10.0.0.7");
  await answers({ chatroom: b, ...first }, "one", ["Sam: one"]);
  b.disconnect(first.user);
  const again = await userOn(a, "Sam", "10.0.0.8");
  await answers({ chatroom: a, ...again }, "two", [
    "Slow mode in lobby: wait 30 s before your next message.",
  ]);
});

Deno.test("a session moves to the instance its account connects to", async () => {
  const { cluster, a, b } = twoInstances(true);
  const identity = (name: string) => ({ name, roles: new Set<never>(), expiresAt: undefined });
  const first = new FakeSink();
  connect(a, first, { identity: identity("Ann"), resumable: true });
  await first.waitFor(isWelcome, "the first welcome");
  const second = new FakeSink();
  connect(b, second, { identity: identity("Ann"), resumable: true });
  const welcome = await second.waitFor(isWelcome, "the welcome back");
  assertEquals(first.closed, "replaced");
  assertEquals(welcome.body.startsWith("Welcome, Ann"), true);
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

Deno.test("what an account read comes along when its session moves to another instance", async () => {
  const { a, b } = twoInstances(true);
  const identity = { name: "Ann", roles: new Set<never>(), expiresAt: undefined };
  const bob = await userOn(a, "Bob");
  await answers({ chatroom: a, ...bob }, "!join games", ["You are now in games with: Bob"]);
  for (const text of ["one", "two", "three"]) receive(a, bob.user, text);
  const said = bob.sink.events.findLast((event) => event.type === "message");
  const epoch = said?.type === "message" ? said.epoch : undefined;
  const phone = new FakeSink();
  const ann = connect(a, phone, { identity, resumable: true });
  await phone.waitFor(isWelcome, "Ann's welcome");
  a.handle(ann, { type: "rooms", seen: new Map([["games", { epoch, seq: 2 }]]) });
  await phone.waitFor((event) => event.type === "rooms", "the rooms on the phone");
  const laptop = new FakeSink();
  const moved = connect(b, laptop, { identity, resumable: true });
  await laptop.waitFor(isWelcome, "the welcome back");
  laptop.take();
  b.handle(moved, { type: "rooms", seen: new Map() });
  const listed = await laptop.waitFor((event) => event.type === "rooms", "the rooms");
  const games = listed.type === "rooms"
    ? listed.rooms.find((room) => room.name === "games")
    : undefined;
  assertEquals(games?.unread, 1, "read on the phone, read on the laptop, on another instance");
});

Deno.test("an account held by an instance that does not answer is told to try again", async () => {
  const { cluster, a } = twoInstances(true);
  // Held by an instance that is gone, until the cluster lets its names go.
  cluster.names.set("ann", { name: "Ann", room: "lobby", instance: "i9", userId: 1, rank: 0 });
  const sink = new FakeSink();
  connect(a, sink, { identity: { name: "Ann", roles: new Set<never>(), expiresAt: undefined } });
  await sink.waitFor((event) => event.type === "error", "the refusal");
  assertEquals(sink.take(), [[
    "SERVER",
    "Your account cannot be signed in here yet: another server of this chat holds it and does not answer, or the servers cannot reach each other. Try again in a few seconds.",
  ]]);
  assertEquals(sink.closed, "retry");
  assertEquals(a.size, 0);
});

Deno.test("a seq the room already holds for another message: said, counted, never dropped", async () => {
  const cluster = new FakeCluster();
  const metrics = createMetrics();
  const chatroom = createTestChatroom({ broker: cluster.join(), metrics });
  const { sink, user } = await userOn(chatroom, "Ann");
  receive(chatroom, user, "first");
  await sink.waitFor((event) => event.type === "message", "the first message");
  const handler = cluster.handlerOf("i1");
  const position = { epoch: cluster.logOf("lobby").epoch, seq: 1 };
  const note = (id: string, text: string): MessageNote => ({
    kind: "message",
    room: "lobby",
    id,
    sentAt: 0,
    author: { instance: "i9", userId: 1, name: "Zed" },
    text,
    emote: false,
  });
  const first = sink.events.find((event) => event.type === "message")!;

  // The same message again (a redelivery after a reconnect) is not news.
  sink.take();
  handler.deliverRoomNote(note(first.id, "first"), position);
  assertEquals(sink.take(), []);
  assertEquals(metrics.historyConflicts.get(), 0);

  // Another message under the same seq reaches the room, and the conflict is counted.
  handler.deliverRoomNote(note("other", "numbered twice"), position);
  assertEquals(sink.take().map(([, body]) => body), ["Zed: numbered twice"]);
  assertEquals(metrics.historyConflicts.get(), 1);
});

Deno.test("the end of a session said twice shows once, even after many other arrivals", async () => {
  const cluster = new FakeCluster();
  const chatroom = createTestChatroom({ broker: cluster.join() });
  const { sink } = await userOn(chatroom, "Ann");
  const bob = await userOn(chatroom, "Bob");
  await answers({ chatroom, ...bob }, "!join games", ["You are now in games with: Bob"]);
  const handler = cluster.handlerOf("i1");
  const zed = { instance: "i9", userId: 1, name: "Zed" };
  const presence = (
    id: string,
    action: PresenceNote["action"],
    notice: PresenceNote["notice"],
    room = "lobby",
  ): PresenceNote => ({ kind: "presence", room, id, sentAt: 0, author: zed, action, notice });
  sink.take();
  handler.deliverRoomNote(presence("i9.gone.1", "leave", "disconnected"));
  assertEquals(sink.take().map(([, body]) => body), ["Zed has disconnected!"]);
  // The same id in another room is that room's news.
  bob.sink.take();
  handler.deliverRoomNote(presence("i9.gone.1", "leave", "disconnected", "games"));
  assertEquals(bob.sink.take().map(([, body]) => body), ["Zed has disconnected!"]);
  // More arrivals than are remembered by id come and go meanwhile...
  for (let i = 0; i < 5000; i++) handler.deliverRoomNote(presence(`i8.${i}`, "join", "connected"));
  sink.take();
  // ...and the same end, said by Zed's own instance once its link is back (a kick, here), is
  // not shown again.
  handler.deliverRoomNote({ ...presence("i9.gone.1", "leave", "kicked"), by: "Mod", reason: "r" });
  assertEquals(sink.take(), []);
});
