/**
 * Messages that can be taken back: edits and removals are entries of the
 * room's log, so everyone sees them and history reads changed; only the
 * author within `edit_window`, or a moderator removing, may make them.
 */

import { assertEquals } from "@std/assert";
import type { Chatroom } from "../../src/chat/mod.ts";
import type { User } from "../../src/chat/user.ts";
import type { ChatEvent, MessageEvent } from "../../src/vocabulary/events.ts";
import { FakeCluster } from "../_fake_cluster.ts";
import {
  brokerPublishing,
  connect,
  createTestChatroom,
  FakeClock,
  FakeSink,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";
const FAST = { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 };
const CONFIG = { ...TEST_CHAT_CONFIG, flood: FAST, editWindow: 600 };

function setUp() {
  const clock = new FakeClock();
  const chatroom = createTestChatroom({
    now: clock.now,
    config: CONFIG,
    auth: { tokenMode: false, expiryWarning: 60, operatorPassword: PASSWORD },
  });
  const join = (name: string) => {
    const sink = new FakeSink();
    const user = connect(chatroom, sink, { name });
    return { sink, user };
  };
  return { clock, chatroom, ann: join("Ann"), bob: join("Bob") };
}

/** What `user` says, as the message event everyone got. */
function say(chatroom: Chatroom, { user, sink }: { user: User; sink: FakeSink }, text: string) {
  sink.take();
  receive(chatroom, user, text);
  const said = sink.events.find((event) => event.type === "message" && event.text === text);
  if (said === undefined) throw new Error(`"${text}" was not said`);
  return said as MessageEvent;
}

const bodies = (sink: FakeSink) => sink.take().map(([, body]) => body);
const errors = (sink: FakeSink) =>
  sink.events.flatMap((event) => event.type === "error" ? [[event.code, event.body]] : []);

Deno.test("an author edits and removes their message; everyone and history see it", () => {
  const { chatroom, ann, bob } = setUp();
  const first = say(chatroom, ann, "helo");
  const second = say(chatroom, ann, "spam");
  bob.sink.take();

  chatroom.handle(ann.user, { type: "edit", id: first.id, text: "hello" });
  assertEquals(bodies(bob.sink), ["Ann edited a message: hello"]);
  chatroom.handle(ann.user, { type: "delete", id: second.id });
  assertEquals(bodies(bob.sink), ["A message of Ann was removed"]);
  const [removal] = ann.sink.events.slice(-1) as MessageEvent[];
  assertEquals(removal.change, { target: second.id, action: "delete", author: "Ann" });

  // History reads changed, and the changes to what it shows are not replayed on top.
  receive(chatroom, bob.user, "!history");
  assertEquals(bodies(bob.sink), ["Ann: hello (edited)", "Ann: (message removed)"]);
  const carol = new FakeSink();
  connect(chatroom, carol, { name: "Carol" });
  const replayed = carol.events.filter((event) => event.type === "history") as MessageEvent[];
  assertEquals(replayed.map((event) => [event.text, event.edited, event.removed]), [
    ["hello", true, undefined],
    ["", false, true],
  ]);

  // A removed message can be neither removed nor edited again.
  ann.sink.take();
  chatroom.handle(ann.user, { type: "delete", id: second.id });
  chatroom.handle(ann.user, { type: "edit", id: second.id, text: "back" });
  assertEquals(errors(ann.sink).map(([code]) => code), ["not_found", "not_found"]);
});

Deno.test("only the author within edit_window, or a moderator removing, may change a message", () => {
  const { clock, chatroom, ann, bob } = setUp();
  const said = say(chatroom, ann, "mine");
  bob.sink.take();
  chatroom.handle(bob.user, { type: "edit", id: said.id, text: "yours now" });
  chatroom.handle(bob.user, { type: "delete", id: said.id });
  assertEquals(errors(bob.sink).map(([code]) => code), ["forbidden", "forbidden"]);
  assertEquals(
    errors(bob.sink)[0][1],
    "You can change only your own messages, within 10 minutes of sending them; moderators can remove others' (a moderator's takes a higher rank).",
  );
  chatroom.handle(bob.user, { type: "delete", id: "no-such-id" });
  assertEquals(errors(bob.sink).at(-1), ["not_found", "No message no-such-id is kept in lobby."]);

  clock.advance(600_001);
  ann.sink.take();
  chatroom.handle(ann.user, { type: "edit", id: said.id, text: "too late" });
  assertEquals(errors(ann.sink).map(([code]) => code), ["forbidden"]);

  // A moderator removes anyone's, at any time.
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  bob.sink.take();
  ann.sink.take();
  receive(chatroom, bob.user, `!delete ${said.id}`);
  assertEquals(bodies(ann.sink), ["A message of Ann was removed by Bob"]);
  // ...but edits nobody else's.
  const again = say(chatroom, ann, "still mine");
  bob.sink.take();
  chatroom.handle(bob.user, { type: "edit", id: again.id, text: "not his" });
  assertEquals(errors(bob.sink).map(([code]) => code), ["forbidden"]);
});

Deno.test("a newcomer under a departed author's name may not change their messages", () => {
  const { chatroom, ann, bob } = setUp();
  const said = say(chatroom, ann, "said before leaving");
  chatroom.disconnect(ann.user);
  const sink = new FakeSink();
  const newcomer = connect(chatroom, sink, { name: "Ann" });
  assertEquals(newcomer.name, "Ann");
  chatroom.handle(newcomer, { type: "delete", id: said.id });
  assertEquals(errors(sink).map(([code]) => code), ["forbidden"]);
  bob.sink.take();
});

Deno.test("a client resuming after the changed message gets the change; one before, the changed message", () => {
  const { chatroom, ann, bob } = setUp();
  const said = say(chatroom, ann, "first draft");
  chatroom.handle(ann.user, { type: "edit", id: said.id, text: "final" });
  const room = chatroom.findRoom("lobby")!;
  const after = room.backlogAfter(room.epoch, said.seq).messages;
  assertEquals(after.map((event) => [event.change?.action, event.text]), [["edit", "final"]]);
  const before = room.backlogAfter(room.epoch, said.seq - 1).messages;
  assertEquals(before.map((event) => [event.change?.action, event.text, event.edited]), [
    [undefined, "final", true],
  ]);
  bob.sink.take();
});

Deno.test("a change made on one instance shows on the others, in the room and its history", async () => {
  const cluster = new FakeCluster();
  const [a, b] = [1, 2].map(() => createTestChatroom({ broker: cluster.join(), config: CONFIG }));
  const welcomed = async (chatroom: Chatroom, name: string) => {
    const sink = new FakeSink();
    const user = connect(chatroom, sink, { name });
    await sink.waitFor((event: ChatEvent) => event.type === "welcome", "welcome");
    return { sink, user };
  };
  const ann = await welcomed(a, "Ann");
  const bob = await welcomed(b, "Bob");
  const said = say(a, ann, "typo hree");
  bob.sink.take();
  a.handle(ann.user, { type: "edit", id: said.id, text: "typo here" });
  assertEquals(bodies(bob.sink), ["Ann edited a message: typo here"]);
  // The last two entries: the message, which reads edited, and the edit, which is not replayed.
  receive(b, bob.user, "!history 2");
  await bob.sink.waitFor((event) => event.type === "history", "history");
  assertEquals(bodies(bob.sink), ["Ann: typo here (edited)"]);
});

Deno.test("a removed message's text is read nowhere, not even in its earlier edits", () => {
  const { chatroom, ann, bob } = setUp();
  const said = say(chatroom, ann, "harmless");
  chatroom.handle(ann.user, { type: "edit", id: said.id, text: "SECRET abuse" });
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  receive(chatroom, bob.user, `!delete ${said.id}`);
  const room = chatroom.findRoom("lobby")!;
  const everything = [...room.recent(100), ...room.backlogAfter(room.epoch, said.seq).messages];
  assertEquals(everything.filter((event) => /SECRET/.test(event.text + event.body)), []);
  bob.sink.take();
  receive(chatroom, bob.user, "!history 2");
  assertEquals(bodies(bob.sink), [
    "A message of Ann was removed",
    "A message of Ann was removed by Bob",
  ]);
});

Deno.test("an edit that comes after its message's removal shows no text", async () => {
  const cluster = new FakeCluster();
  const chatroom = createTestChatroom({ broker: cluster.join(), config: CONFIG });
  const [annSink, bobSink] = [new FakeSink(), new FakeSink()];
  const ann = connect(chatroom, annSink, { name: "Ann" });
  connect(chatroom, bobSink, { name: "Bob" });
  for (const sink of [annSink, bobSink]) {
    await sink.waitFor((event: ChatEvent) => event.type === "welcome", "welcome");
  }
  receive(chatroom, ann, "racing");
  const said = await annSink.waitFor((event) => event.type === "message", "racing") as MessageEvent;
  const handler = cluster.handlerOf("i1");
  const author = { instance: "i9", userId: 1, name: "Ann" };
  const change = (action: "edit" | "delete", seq: number, text: string) =>
    handler.deliverRoomNote({
      kind: "message",
      room: "lobby",
      id: `i9.${seq}`,
      sentAt: said.sentAt,
      author,
      text,
      emote: false,
      change: { target: said.id, action, author: "Ann" },
    }, { epoch: said.epoch, seq });
  bobSink.take();
  // Two instances at once: the removal is stored first, the edit right after it.
  change("delete", said.seq + 1, "");
  change("edit", said.seq + 2, "LEAKED");
  const shown = bobSink.events as MessageEvent[];
  assertEquals(shown.map((event) => [event.change?.action, event.text]), [
    ["delete", ""],
    ["delete", ""],
  ]);
});

Deno.test("a removal not yet stored already stops further changes of its message", async () => {
  const deliveries: (() => void)[] = [];
  const chatroom = createTestChatroom({
    config: CONFIG,
    broker: brokerPublishing((note, next) => {
      // Stored later, as with a store or NATS.
      if (note.kind === "message" && note.change !== undefined) {
        deliveries.push(() => next(note));
        return "queued";
      }
      return next(note);
    }),
  });
  const sink = new FakeSink();
  const ann = connect(chatroom, sink, { name: "Ann" });
  const said = say(chatroom, { user: ann, sink }, "going");
  sink.take();
  chatroom.handle(ann, { type: "delete", id: said.id });
  chatroom.handle(ann, { type: "edit", id: said.id, text: "too late" });
  chatroom.handle(ann, { type: "delete", id: said.id });
  assertEquals(errors(sink).map(([code]) => code), ["not_found", "not_found"]);
  assertEquals(deliveries.length, 1);
  for (const deliver of deliveries) deliver();
  await Promise.resolve();
});

Deno.test("edits are said: slow mode holds them back, and they are not unread", () => {
  const { chatroom, ann, bob } = setUp();
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  receive(chatroom, bob.user, "!slow 600");
  const said = say(chatroom, ann, "once");
  ann.sink.take();
  chatroom.handle(ann.user, { type: "edit", id: said.id, text: "twice" });
  assertEquals(errors(ann.sink).map(([code]) => code), ["slow"]);
  receive(chatroom, bob.user, "!slow 0");
  for (const text of ["one", "two", "three"]) {
    chatroom.handle(ann.user, { type: "edit", id: said.id, text });
  }
  const room = chatroom.findRoom("lobby")!;
  assertEquals(room.unreadAfter(room.epoch, said.seq - 1), 1);
  assertEquals(room.unreadAfter(room.epoch, said.seq), 0);
});

Deno.test("a moderator removes no moderator's message; the server API removes anyone's", async () => {
  const { chatroom, ann, bob } = setUp();
  receive(chatroom, ann.user, `!op ${PASSWORD}`);
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  const said = say(chatroom, ann, "a moderator's word");
  bob.sink.take();
  receive(chatroom, bob.user, `!delete ${said.id}`);
  assertEquals(errors(bob.sink).map(([code]) => code), ["forbidden"]);
  const outcome = await chatroom.perform({ type: "delete", id: said.id, room: "lobby" });
  assertEquals(outcome, {
    ok: true,
    id: outcome.ok ? outcome.id : "",
    done: `message ${said.id} of Ann removed`,
  });
});

Deno.test("a ban of a look-alike name removes the messages of the name it bans", async () => {
  const { chatroom, bob } = setUp();
  const sink = new FakeSink();
  const alice = { user: connect(chatroom, sink, { name: "Alice" }), sink };
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  const said = say(chatroom, alice, "said by Alice");
  bob.sink.take();
  // A capital I for the l: the same name to the chat, not the same name key.
  chatroom.handle(bob.user, { type: "ban", target: "AIice", seconds: 60, delete: 5 });
  const done = await bob.sink.waitFor((event) => event.body.startsWith("Done:"), "the ban");
  assertEquals(done.body.endsWith("; 1 of their messages removed."), true, done.body);
  assertEquals(chatroom.findRoom("lobby")!.keptById(said.id)?.removed, true);
});

Deno.test("a ban may remove the user's newest messages along, in every room kept here", async () => {
  const { clock, chatroom, ann, bob } = setUp();
  receive(chatroom, bob.user, `!op ${PASSWORD}`);
  const first = say(chatroom, ann, "first in lobby");
  clock.advance(1);
  const second = say(chatroom, ann, "second in lobby");
  receive(chatroom, ann.user, "!join games");
  clock.advance(1);
  const third = say(chatroom, ann, "in games");
  bob.sink.take();
  chatroom.handle(bob.user, {
    type: "ban",
    target: "Ann",
    seconds: 3600,
    reason: "spam",
    delete: 2,
  });
  const done = await bob.sink.waitFor((event) => event.body.startsWith("Done:"), "the ban");
  assertEquals(done.body.endsWith("; 2 of their messages removed."), true, done.body);
  const lobby = chatroom.findRoom("lobby")!;
  const games = chatroom.findRoom("games")!;
  assertEquals(
    [lobby.keptById(first.id)?.removed, lobby.keptById(second.id)?.removed],
    [undefined, true],
  );
  assertEquals(games.keptById(third.id)?.removed, true);
  assertEquals(lobby.isRemoving(second.id), false, "delivered, the removal is no longer pending");
  assertEquals(ann.sink.closed, "removed");
});
