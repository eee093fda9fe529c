/** Sessions: resuming on a new connection, lingering after a drop, and resuming across epochs. */

import { assertEquals, assertNotEquals } from "@std/assert";
import { LocalBroker } from "../../src/broker/local.ts";
import type { ChatEvent, MessageEvent } from "../../src/vocabulary/events.ts";
import { createMetrics } from "../../src/metrics.ts";
import {
  chatroomWith,
  connect,
  createTestChatroom,
  FakeClock,
  FakeSink,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";

const history = (sink: FakeSink) =>
  sink.events.filter((event): event is MessageEvent => event.type === "history")
    .map((event) => event.text);

/** The event of a type among those sent, narrowed. */
function eventOf<T extends ChatEvent["type"]>(
  sink: FakeSink,
  type: T,
): Extract<ChatEvent, { type: T }> | undefined {
  return sink.events.find((event): event is Extract<ChatEvent, { type: T }> => event.type === type);
}

Deno.test("resume", async (t) => {
  await t.step(
    "with the token, takes an open session over and replays only what was missed",
    () => {
      const { chatroom, sinks: [alice, bob], users: [aliceUser, bobUser] } = chatroomWith(2);
      const epoch = chatroom.findRoom("lobby")?.epoch;
      receive(chatroom, bobUser, "seen");
      receive(chatroom, bobUser, "missed 1");
      receive(chatroom, bobUser, "missed 2");
      bob.take();
      const fresh = new FakeSink();
      const resumed = connect(chatroom, fresh, {
        name: aliceUser.name,
        token: aliceUser.token,
        room: "lobby",
        epoch,
        lastSeq: 1,
      });
      assertEquals(alice.closed, "replaced");
      assertEquals(resumed, aliceUser);
      assertEquals(history(fresh), ["missed 1", "missed 2"]);
      assertEquals(eventOf(fresh, "gap"), undefined);
      assertEquals(bob.take(), []);
      assertEquals(chatroom.size, 2);
    },
  );

  await t.step("into the room it was in", () => {
    const { chatroom, sinks: [, bob], users: [aliceUser, bobUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!join games");
    receive(chatroom, bobUser, "!join games");
    receive(chatroom, bobUser, "hi");
    bob.take();
    const fresh = new FakeSink();
    const resumed = connect(chatroom, fresh, {
      name: aliceUser.name,
      token: aliceUser.token,
      room: "games",
      lastSeq: 0,
    });
    assertEquals(resumed.room.name, "games");
    assertEquals(fresh.take().slice(1), [
      ["SERVER", "You are now in games with: Guest2, Guest1"],
      ["HISTORY", "Guest2: hi"],
    ]);
    assertEquals(bob.take(), []);
  });

  await t.step("with a wrong token, the name is not granted, and the reason is given", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    const sink = new FakeSink();
    const stranger = connect(chatroom, sink, { name: aliceUser.name, token: "guess" });
    assertEquals(stranger.name, "Guest2");
    assertEquals(sink.take().slice(0, 2), [
      ["SERVER", 'Welcome, Guest2 (hint: type "!help" for help)'],
      ["SERVER", 'Cannot use the name "Guest1": it is taken. You are Guest2.'],
    ]);
    assertEquals(eventOf(sink, "error"), undefined);
    assertEquals(alice.closed, undefined);
  });

  await t.step("a refused name says why", () => {
    const chatroom = createTestChatroom();
    const sink = new FakeSink();
    connect(chatroom, sink, { name: "admin" });
    assertEquals(sink.take()[1], [
      "SERVER",
      'Cannot use the name "admin": it is reserved. You are Guest1.',
    ]);
  });
});

Deno.test("a dropped session lingers", async (t) => {
  const config = { ...TEST_CHAT_CONFIG, sessionLinger: 60, sessionBuffer: 2 };

  /** Ann (resumable) and Bob in the lobby, with a clock to move. */
  function setUp() {
    const clock = new FakeClock();
    const metrics = createMetrics();
    const chatroom = createTestChatroom({ config, now: clock.now, metrics });
    const annSink = new FakeSink();
    const ann = connect(chatroom, annSink, { name: "Ann", resumable: true });
    const bobSink = new FakeSink();
    const bob = connect(chatroom, bobSink, { name: "Bob" });
    annSink.take();
    bobSink.take();
    return { clock, metrics, chatroom, ann, annSink, bob, bobSink };
  }

  await t.step("nobody sees it leave or come back within session_linger", () => {
    const { clock, chatroom, ann, annSink, bob, bobSink } = setUp();
    const epoch = ann.room.epoch;
    receive(chatroom, bob, "before");
    chatroom.detach(ann, annSink);
    receive(chatroom, bob, "while away 1");
    receive(chatroom, bob, "while away 2");
    clock.advance(59_000);
    chatroom.expireSessions();
    assertEquals(bobSink.take(), [
      ["SELF", "Bob: before"],
      ["SELF", "Bob: while away 1"],
      ["SELF", "Bob: while away 2"],
    ]);
    const fresh = new FakeSink();
    connect(chatroom, fresh, {
      name: "Ann",
      token: ann.token,
      room: "lobby",
      epoch,
      lastSeq: 1,
    });
    assertEquals(history(fresh), ["while away 1", "while away 2"]);
    assertEquals(bobSink.take(), []);
    receive(chatroom, ann, "back");
    assertEquals(bobSink.take(), [["USER", "Ann: back"]]);
  });

  await t.step("its name is kept: a hello with it gets another name and the reason", () => {
    const { chatroom, ann, annSink } = setUp();
    chatroom.detach(ann, annSink);
    const sink = new FakeSink();
    const other = connect(chatroom, sink, { name: "ann" });
    assertNotEquals(other.name, "Ann");
    assertEquals(sink.take()[1], [
      "SERVER",
      `Cannot use the name "ann": it is taken. You are ${other.name}.`,
    ]);
    const wrongToken = connect(chatroom, new FakeSink(), { name: "Ann", token: "not it" });
    assertNotEquals(wrongToken.name, "Ann");
    assertEquals(chatroom.findUser("Ann"), ann);
  });

  await t.step("private messages sent meanwhile are delivered on return, as many as kept", () => {
    const { chatroom, ann, annSink, bob, bobSink } = setUp();
    chatroom.detach(ann, annSink);
    for (const text of ["one", "two", "three"]) receive(chatroom, bob, `!pm Ann ${text}`);
    assertEquals(bobSink.take().map(([, body]) => body), [
      "PM -> Ann: one",
      "PM -> Ann: two",
      "PM -> Ann: three",
    ]);
    const fresh = new FakeSink();
    connect(chatroom, fresh, { name: "Ann", token: ann.token, room: "lobby" });
    assertEquals(fresh.take().slice(2), [
      ["PRIVATE", "PM <- Bob: one"],
      ["PRIVATE", "PM <- Bob: two"],
      ["SERVER", "1 private messages sent to you while you were away could not be kept."],
    ]);
  });

  await t.step("when session_linger passes, the others see it leave and the name is free", () => {
    const { clock, metrics, chatroom, ann, annSink, bobSink } = setUp();
    chatroom.detach(ann, annSink);
    clock.advance(60_000);
    chatroom.expireSessions();
    assertEquals(bobSink.take(), [["SERVER", "Ann has disconnected!"]]);
    assertEquals(chatroom.findUser("Ann"), undefined);
    assertEquals(metrics.sessionsExpired.get(), 1);
    const late = new FakeSink();
    const resumed = connect(chatroom, late, { name: "Ann", token: ann.token, room: "lobby" });
    assertNotEquals(resumed, ann);
    assertEquals(bobSink.take(), [["SERVER", "Ann has connected!"]]);
  });

  await t.step("a session that cannot resume ends at once", () => {
    const { chatroom, bob, bobSink, annSink } = setUp();
    chatroom.detach(bob, bobSink);
    assertEquals(annSink.take(), [["SERVER", "Bob has disconnected!"]]);
  });

  await t.step("an old connection closing after a resume leaves the session alone", () => {
    const { chatroom, ann, annSink, bobSink } = setUp();
    const fresh = new FakeSink();
    connect(chatroom, fresh, { name: "Ann", token: ann.token });
    chatroom.detach(ann, annSink);
    assertEquals(ann.sink, fresh);
    assertEquals(bobSink.take(), []);
  });
});

Deno.test("resume across epochs is never silent", async (t) => {
  await t.step("after a restart without a store, the whole backlog follows a gap", () => {
    const before = chatroomWith(1);
    const epoch = before.chatroom.findRoom("lobby")?.epoch;
    const after = chatroomWith(1);
    for (const text of ["new 1", "new 2"]) receive(after.chatroom, after.users[0], text);
    const sink = new FakeSink();
    connect(after.chatroom, sink, { name: "Returning", room: "lobby", epoch, lastSeq: 1 });
    assertEquals(eventOf(sink, "gap")?.reason, "epoch");
    assertEquals(history(sink), ["new 1", "new 2"]);
    assertEquals(
      sink.events.findIndex((event) => event.type === "gap") + 1,
      sink.events.findIndex((event) => event.type === "history"),
    );
  });

  await t.step("a re-created room has a new epoch", () => {
    const clock = new FakeClock();
    const config = { ...TEST_CHAT_CONFIG, roomIdleTtl: 10 };
    const { chatroom, users: [ann] } = chatroomWith(1, { config, now: clock.now });
    receive(chatroom, ann, "!join games");
    receive(chatroom, ann, "old");
    const oldEpoch = ann.room.epoch;
    receive(chatroom, ann, "!leave");
    clock.advance(10_000);
    chatroom.sweepRooms();
    receive(chatroom, ann, "!join games");
    receive(chatroom, ann, "new");
    assertNotEquals(ann.room.epoch, oldEpoch);
    const sink = new FakeSink();
    connect(chatroom, sink, { name: "Bob", room: "games", epoch: oldEpoch, lastSeq: 1 });
    assertEquals(eventOf(sink, "gap")?.reason, "epoch");
    assertEquals(history(sink), ["new"]);
  });

  await t.step("a backlog that no longer reaches back is marked as trimmed", () => {
    const config = { ...TEST_CHAT_CONFIG, historySize: 2 };
    const { chatroom, users: [ann] } = chatroomWith(1, { config });
    for (const text of ["1", "2", "3", "4"]) receive(chatroom, ann, text);
    const sink = new FakeSink();
    const { epoch } = ann.room;
    connect(chatroom, sink, { name: "Bob", room: "lobby", epoch, lastSeq: 1 });
    assertEquals(eventOf(sink, "gap")?.reason, "trimmed");
    assertEquals(history(sink), ["3", "4"]);
  });

  await t.step("welcome, members and history carry the epoch", () => {
    const broker = new LocalBroker();
    const { chatroom, users: [ann] } = chatroomWith(1, { broker });
    receive(chatroom, ann, "!join games");
    receive(chatroom, ann, "hi");
    const sink = new FakeSink();
    connect(chatroom, sink, { name: "Bob", room: "games" });
    const epoch = broker.log.epochOf("games");
    assertEquals(eventOf(sink, "welcome")?.epoch, epoch);
    assertEquals(eventOf(sink, "members")?.epoch, epoch);
    const replayed = sink.events.find((event): event is MessageEvent => event.type === "history");
    assertEquals(replayed?.epoch, epoch);
  });
});
