/**
 * Token mode: an account's private conversations are kept in its inbox,
 * stored before they are shown, replayed when the account connects (after
 * the position it gives), and read back a conversation at a time.
 */

import { assertEquals } from "@std/assert";
import type { Chatroom } from "../../src/chat/mod.ts";
import type { ChatAuth } from "../../src/chat/sign_in.ts";
import type { User } from "../../src/chat/user.ts";
import type { ChatEvent, SessionStart } from "../../src/vocabulary/events.ts";
import { connect, createTestChatroom, FakeSink, receive, TEST_CHAT_CONFIG } from "../_fakes.ts";

const AUTH: ChatAuth = { tokenMode: true, expiryWarning: 60 };
const FAST = { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 };

const identity = (name: string) => ({ name, roles: new Set<never>(), expiresAt: undefined });

function tokenChat(pmHistorySize = 100, auth: ChatAuth = AUTH): Chatroom {
  return createTestChatroom({
    auth,
    config: { ...TEST_CHAT_CONFIG, flood: FAST, pmHistorySize },
  });
}

/** Signs `name` in on a new device; its first events taken. */
function signIn(chatroom: Chatroom, name: string, start: SessionStart = {}) {
  const sink = new FakeSink();
  const user = connect(chatroom, sink, { identity: identity(name), ...start });
  return { sink, user };
}

/** The private events among `events`, as `[origin, body, seq]`. */
function privates(events: readonly ChatEvent[]): [string, string, number | undefined][] {
  return events.flatMap((event) =>
    event.type === "private" ? [[event.origin, event.body, event.seq]] : []
  );
}

const pm = (chatroom: Chatroom, user: User, to: string, text: string) =>
  receive(chatroom, user, `!pm ${to} ${text}`);

Deno.test("a private message is kept in both inboxes and replayed on connect", async (t) => {
  const chatroom = tokenChat();
  const ann = signIn(chatroom, "Ann");
  const bob = signIn(chatroom, "Bob");
  ann.sink.take();
  bob.sink.take();

  await t.step("shown live with its place in each inbox", () => {
    pm(chatroom, ann.user, "Bob", "psst");
    pm(chatroom, bob.user, "Ann", "what?");
    assertEquals(privates(bob.sink.events), [
      ["PRIVATE", "PM <- Ann: psst", 1],
      ["PRIVATE", "PM -> Ann: what?", 2],
    ]);
    assertEquals(privates(ann.sink.events), [
      ["PRIVATE", "PM -> Bob: psst", 1],
      ["PRIVATE", "PM <- Bob: what?", 2],
    ]);
  });

  await t.step("a device that connects later reads the conversation", () => {
    const laptop = signIn(chatroom, "Bob");
    assertEquals(privates(laptop.sink.events), [
      ["HISTORY", "PM <- Ann: psst", 1],
      ["HISTORY", "PM -> Ann: what?", 2],
    ]);
    chatroom.detach(laptop.user, laptop.sink);
  });

  await t.step("after the session ends, the next one reads it too", () => {
    chatroom.disconnect(bob.user);
    const again = signIn(chatroom, "Bob");
    assertEquals(privates(again.sink.events), [
      ["HISTORY", "PM <- Ann: psst", 1],
      ["HISTORY", "PM -> Ann: what?", 2],
    ]);
  });

  await t.step("a start after a position brings only what came after it, as news", () => {
    const epoch = ann.sink.events.find((event) => event.type === "private")?.epoch;
    chatroom.disconnect(ann.user);
    const back = signIn(chatroom, "Ann", { privates: { epoch, seq: 1 } });
    assertEquals(privates(back.sink.events), [["PRIVATE", "PM <- Bob: what?", 2]]);
  });
});

Deno.test("a conversation is read back with history and with", () => {
  const chatroom = tokenChat();
  const ann = signIn(chatroom, "Ann");
  const bob = signIn(chatroom, "Bob");
  const cat = signIn(chatroom, "Cat");
  pm(chatroom, ann.user, "Bob", "one");
  pm(chatroom, cat.user, "Ann", "two");
  pm(chatroom, bob.user, "Ann", "three");
  ann.sink.take();
  chatroom.handle(ann.user, { type: "history", with: "bob" });
  assertEquals(privates(ann.sink.events), [
    ["HISTORY", "PM -> Bob: one", 1],
    ["HISTORY", "PM <- Bob: three", 3],
  ]);
  ann.sink.take();
  chatroom.handle(ann.user, { type: "history", with: "Bob", count: 1 });
  assertEquals(privates(ann.sink.events), [["HISTORY", "PM <- Bob: three", 3]]);
  ann.sink.take();
  chatroom.handle(ann.user, { type: "history", with: "Dan" });
  assertEquals(ann.sink.take(), [["SERVER", "No private messages with Dan kept"]]);
});

Deno.test("an inbox keeps pm_history_size messages; a resume from before says what is gone", () => {
  const chatroom = tokenChat(2);
  const ann = signIn(chatroom, "Ann");
  const bob = signIn(chatroom, "Bob");
  for (const text of ["one", "two", "three", "four"]) pm(chatroom, ann.user, "Bob", text);
  const epoch = bob.sink.events.find((event) => event.type === "private")?.epoch;
  chatroom.disconnect(bob.user);
  const back = signIn(chatroom, "Bob");
  assertEquals(privates(back.sink.events), [
    ["HISTORY", "PM <- Ann: three", 3],
    ["HISTORY", "PM <- Ann: four", 4],
  ]);
  chatroom.disconnect(back.user);
  const resumed = signIn(chatroom, "Bob", { privates: { epoch, seq: 1 } });
  const gap = resumed.sink.events.find((event) => event.type === "gap");
  assertEquals(gap?.type === "gap" ? gap.reason : undefined, "trimmed");
  assertEquals(privates(resumed.sink.events).length, 2);
});

Deno.test("a lingering session resumed without a position gets what it missed, once", () => {
  const chatroom = tokenChat();
  const ann = signIn(chatroom, "Ann", { resumable: true });
  const bob = signIn(chatroom, "Bob");
  pm(chatroom, bob.user, "Ann", "before");
  chatroom.detach(ann.user, ann.sink);
  pm(chatroom, bob.user, "Ann", "while away");
  const resume = { resumable: true, resuming: true };
  const back = signIn(chatroom, "Ann", resume);
  assertEquals(privates(back.sink.events), [["PRIVATE", "PM <- Bob: while away", 2]]);
  // Resumed again at once: nothing new, so nothing comes twice.
  chatroom.detach(ann.user, back.sink);
  const again = signIn(chatroom, "Ann", resume);
  assertEquals(privates(again.sink.events), []);
  // A fresh client (a hello) knows nothing yet: it gets them all, as history.
  chatroom.detach(ann.user, again.sink);
  const fresh = signIn(chatroom, "Ann", { resumable: true });
  assertEquals(privates(fresh.sink.events), [
    ["HISTORY", "PM <- Bob: before", 1],
    ["HISTORY", "PM <- Bob: while away", 2],
  ]);
});

Deno.test("a session that had no private message yet gets what came while it lingered, as news", () => {
  const chatroom = tokenChat();
  const ann = signIn(chatroom, "Ann", { resumable: true });
  const bob = signIn(chatroom, "Bob");
  chatroom.detach(ann.user, ann.sink);
  pm(chatroom, bob.user, "Ann", "first ever");
  const back = signIn(chatroom, "Ann", { resumable: true, resuming: true });
  assertEquals(privates(back.sink.events), [["PRIVATE", "PM <- Bob: first ever", 1]]);
});

Deno.test("without tokens, or with pm_history_size 0, private messages are not kept", () => {
  const open = tokenChat(100, { tokenMode: false, expiryWarning: 60 });
  const sessions = [
    { chatroom: tokenChat(0), as: (name: string) => ({ identity: identity(name) }) },
    { chatroom: open, as: (name: string) => ({ name }) },
  ];
  for (const { chatroom, as } of sessions) {
    const ann = new FakeSink();
    const annUser = connect(chatroom, ann, as("Ann"));
    const bob = new FakeSink();
    connect(chatroom, bob, as("Bob"));
    pm(chatroom, annUser, "Bob", "psst");
    assertEquals(privates(bob.events), [["PRIVATE", "PM <- Ann: psst", undefined]]);
    ann.take();
    pm(chatroom, annUser, "Ann", "note to self");
    assertEquals(privates(ann.events), [
      ["PRIVATE", "PM <- Ann: note to self", undefined],
      ["PRIVATE", "PM -> Ann: note to self", undefined],
    ]);
  }
});

Deno.test("a look-alike account has an inbox of its own", () => {
  const chatroom = tokenChat();
  const alice = signIn(chatroom, "Alice");
  const bob = signIn(chatroom, "Bob");
  pm(chatroom, bob.user, "Alice", "for Alice only");
  chatroom.disconnect(alice.user);
  const other = signIn(chatroom, "ALICE");
  assertEquals(privates(other.sink.events), []);
  chatroom.handle(other.user, { type: "history", with: "Bob" });
  assertEquals(other.sink.take().at(-1), ["SERVER", "No private messages with Bob kept"]);
  pm(chatroom, other.user, "Bob", "I am someone else");
  chatroom.disconnect(other.user);
  const back = signIn(chatroom, "Alice");
  assertEquals(privates(back.sink.events), [["HISTORY", "PM <- Bob: for Alice only", 1]]);
});

Deno.test("a position in an inbox that holds nothing (any more) here gets a gap, not silence", () => {
  const chatroom = tokenChat();
  // Say a restart without a store: the client remembers seq 7 of an epoch this server never had.
  const back = signIn(chatroom, "Ann", { privates: { epoch: "0ld3p0c4", seq: 7 } });
  const gap = back.sink.events.find((event) => event.type === "gap");
  assertEquals(gap?.type === "gap" ? gap.reason : undefined, "epoch");
  assertEquals(privates(back.sink.events), []);
});

Deno.test("a conversation read back holds the account named exactly, not a look-alike", () => {
  const chatroom = tokenChat();
  const bob = signIn(chatroom, "Bob");
  const alice = signIn(chatroom, "Alice");
  pm(chatroom, alice.user, "Bob", "from Alice");
  chatroom.disconnect(alice.user);
  const lookAlike = signIn(chatroom, "ALICE");
  pm(chatroom, lookAlike.user, "Bob", "from ALICE, another account");
  bob.sink.take();
  chatroom.handle(bob.user, { type: "history", with: "Alice" });
  assertEquals(privates(bob.sink.events), [["HISTORY", "PM <- Alice: from Alice", 1]]);
});
