/**
 * Token mode: one account on several devices. Each device gets everything
 * the account gets, what one says the others see as their own, the room
 * sees the account once, and past `max_devices` the oldest device is closed.
 */

import { assertEquals, assertStrictEquals } from "@std/assert";
import type { Chatroom } from "../../src/chat/mod.ts";
import { rank, type Role } from "../../src/auth/tokens.ts";
import type { ChatAuth } from "../../src/chat/sign_in.ts";
import type { User } from "../../src/chat/user.ts";
import { createMetrics } from "../../src/metrics.ts";
import {
  connect,
  createTestChatroom,
  FakeSink,
  NOW,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";

const AUTH: ChatAuth = { tokenMode: true, expiryWarning: 60, maxDevices: 3 };
const FAST = { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 };

const identity = (name: string) => ({ name, roles: new Set<never>(), expiresAt: undefined });

/** A token-mode chatroom with Bob, and Ann on one device; every sink emptied. */
function withAnnAndBob(maxDevices = 3) {
  const metrics = createMetrics();
  const chatroom = createTestChatroom({
    auth: { ...AUTH, maxDevices },
    metrics,
    config: { ...TEST_CHAT_CONFIG, flood: FAST },
  });
  const bob = new FakeSink();
  const bobUser = connect(chatroom, bob, { identity: identity("Bob"), resumable: true });
  const phone = new FakeSink();
  const ann = connect(chatroom, phone, { identity: identity("Ann"), resumable: true });
  bob.take();
  phone.take();
  return { chatroom, metrics, bob, bobUser, phone, ann };
}

/** Signs Ann in on one more device. */
function device(chatroom: Chatroom, ann: User, room?: string): FakeSink {
  const sink = new FakeSink();
  assertStrictEquals(
    connect(chatroom, sink, { identity: identity("Ann"), resumable: true, room }),
    ann,
  );
  return sink;
}

Deno.test("a second device of an account joins its session", async (t) => {
  const { chatroom, bob, bobUser, phone, ann } = withAnnAndBob();
  receive(chatroom, bobUser, "before");
  bob.take();
  phone.take();
  const laptop = device(chatroom, ann, "lobby");

  await t.step("the new device alone is welcomed, with the room as it is", () => {
    assertEquals(laptop.take(), [
      ["SERVER", 'Welcome, Ann (hint: type "!help" for help)'],
      ["SERVER", "You are now in lobby with: Bob, Ann"],
      ["HISTORY", "Bob: before"],
    ]);
    assertEquals(phone.closed, undefined);
    assertEquals(phone.take(), []);
    assertEquals(bob.take(), [], "the room does not see Ann arrive twice");
    assertEquals(chatroom.size, 2);
  });

  await t.step("what one device says, every device sees as its own", () => {
    receive(chatroom, ann, "from the laptop", laptop);
    assertEquals(laptop.take(), [["SELF", "Ann: from the laptop"]]);
    assertEquals(phone.take(), [["SELF", "Ann: from the laptop"]]);
    assertEquals(bob.take(), [["USER", "Ann: from the laptop"]]);
    receive(chatroom, bobUser, "hi Ann");
    assertEquals(laptop.take(), [["USER", "Bob: hi Ann"]]);
    assertEquals(phone.take(), [["USER", "Bob: hi Ann"]]);
    bob.take();
  });

  await t.step("private messages reach every device, both ways", () => {
    receive(chatroom, bobUser, "!pm Ann psst");
    receive(chatroom, ann, "!pm Bob back", phone);
    const both = [["PRIVATE", "PM <- Bob: psst"], ["PRIVATE", "PM -> Bob: back"]];
    assertEquals(laptop.take(), both);
    assertEquals(phone.take(), both);
    assertEquals(bob.take(), [["PRIVATE", "PM -> Ann: psst"], ["PRIVATE", "PM <- Ann: back"]]);
  });

  await t.step("an answer for the asker goes to the device that asked", () => {
    receive(chatroom, ann, "!who", laptop);
    assertEquals(laptop.take(), [["SERVER", "Connected Users: Bob, Ann"]]);
    assertEquals(phone.take(), []);
    receive(chatroom, ann, "!nosuch", phone);
    assertEquals(phone.take(), [["SERVER", '"!nosuch" is not a valid command']]);
    assertEquals(laptop.take(), []);
  });

  await t.step("joining a room on one device moves the account", () => {
    receive(chatroom, ann, "!join games", phone);
    const moved = [["SERVER", "You are now in games with: Ann"]];
    assertEquals(phone.take(), moved);
    assertEquals(laptop.take(), moved);
    assertEquals(bob.take(), [["SERVER", "Ann has left lobby"]]);
  });

  await t.step("a device that closes leaves the session to the others", () => {
    chatroom.detach(ann, laptop);
    assertEquals(bob.take(), []);
    receive(chatroom, ann, "still here", phone);
    assertEquals(phone.take(), [["SELF", "Ann: still here"]]);
    assertEquals(laptop.take(), []);
    assertEquals(chatroom.size, 2);
  });

  await t.step("the last one to close leaves the session lingering, as a single one does", () => {
    chatroom.detach(ann, phone);
    assertEquals(ann.lingering !== undefined, true);
    assertEquals(chatroom.size, 2);
  });
});

Deno.test("what one device read counts as read on the others", () => {
  const { chatroom, bob, bobUser, phone, ann } = withAnnAndBob();
  receive(chatroom, bobUser, "!join games");
  for (const text of ["one", "two", "three"]) receive(chatroom, bobUser, text);
  const said = bob.events.findLast((event) => event.type === "message");
  if (said?.type !== "message" || said.epoch === undefined) throw new Error("Bob said nothing");
  const epoch = said.epoch;
  const laptop = device(chatroom, ann);
  const unread = (sink: FakeSink, seen: [string, { epoch?: string; seq: number }][]) => {
    chatroom.handle(ann, { type: "rooms", seen: new Map(seen) }, sink);
    const answer = sink.events.findLast((event) => event.type === "rooms");
    sink.take();
    if (answer?.type !== "rooms") throw new Error("no rooms answer");
    return answer.rooms.find((room) => room.name === "games")?.unread;
  };
  assertEquals(unread(laptop, []), 3, "nothing read yet");
  assertEquals(unread(phone, [["games", { epoch, seq: 2 }]]), 1);
  assertEquals(unread(laptop, []), 1, "read on the phone, read on the laptop");
  assertEquals(
    unread(laptop, [["games", { epoch, seq: 1 }]]),
    1,
    "an older position does not undo it",
  );
  assertEquals(
    unread(laptop, [["GAMES", { epoch, seq: 3 }]]),
    0,
    "the room as any spelling finds it",
  );
  assertEquals(
    unread(phone, [["games", { epoch: "another", seq: 99 }]]),
    0,
    "another epoch's seq is not further",
  );
  // A position past the newest message counts as the newest: the next one is still unread.
  assertEquals(unread(phone, [["games", { epoch, seq: Number.MAX_SAFE_INTEGER }]]), 0);
  receive(chatroom, bobUser, "four");
  assertEquals(unread(laptop, []), 1);
});

Deno.test("the account floods as one, and every device is warned", () => {
  const chatroom = createTestChatroom({
    auth: AUTH,
    config: { ...TEST_CHAT_CONFIG, flood: { ...TEST_CHAT_CONFIG.flood, rate: 0.001, burst: 3 } },
  });
  const phone = new FakeSink();
  const ann = connect(chatroom, phone, { identity: identity("Ann") });
  const laptop = device(chatroom, ann);
  phone.take();
  laptop.take();
  receive(chatroom, ann, "one", phone);
  receive(chatroom, ann, "two", laptop);
  receive(chatroom, ann, "three", phone);
  receive(chatroom, ann, "four", laptop);
  const said = [
    ["SELF", "Ann: one"],
    ["SELF", "Ann: two"],
    ["SELF", "Ann: three"],
    ["SERVER", "You are sending messages too fast: slow down, they are being dropped."],
  ];
  assertEquals(phone.take(), said, "the other device learns why what it sends is dropped");
  assertEquals(laptop.take(), said);
});

Deno.test("a rooms answer goes to the device that asked", () => {
  const { chatroom, phone, ann } = withAnnAndBob();
  const laptop = device(chatroom, ann);
  laptop.take();
  chatroom.handle(ann, { type: "rooms" }, laptop);
  assertEquals(laptop.events.map((event) => event.type), ["rooms"]);
  assertEquals(phone.take(), []);
});

Deno.test("the newest token says what the session may do, and until when", () => {
  const chatroom = createTestChatroom({ auth: AUTH });
  const token = (ms: number, roles: Role[] = []) => ({
    identity: { name: "Ann", roles: new Set(roles), expiresAt: NOW + ms },
  });
  const laptop = new FakeSink();
  const ann = connect(chatroom, laptop, token(3_600_000));
  laptop.take();
  // A short-lived moderator token: its roles last only as long as it does.
  connect(chatroom, new FakeSink(), token(60_000, ["moderator"]));
  assertEquals([rank(ann.roles), ann.expiresAt], [1, NOW + 60_000]);
  assertEquals(laptop.take(), [["SERVER", "Your sign-in is renewed."]]);
  connect(chatroom, new FakeSink(), token(3_600_000));
  assertEquals([rank(ann.roles), ann.expiresAt], [0, NOW + 3_600_000]);
});

Deno.test("past max_devices the oldest device is told why and closed", () => {
  const { chatroom, metrics, bob, phone, ann } = withAnnAndBob(2);
  const laptop = device(chatroom, ann);
  assertEquals(phone.closed, undefined);
  const tablet = device(chatroom, ann);
  assertEquals(phone.take(), [[
    "SERVER",
    "You signed in on another device, and 2 at once is the most: this one, the oldest, is closed.",
  ]]);
  assertEquals(phone.closed, "too_many_devices");
  assertEquals(laptop.closed, undefined);
  assertEquals(ann.devices, [laptop, tablet]);
  // A closed device that keeps sending (its close not yet done) speaks for nobody.
  laptop.take();
  receive(chatroom, ann, "from the closed phone", phone);
  assertEquals([phone.take(), laptop.take(), bob.take()], [[], [], []]);
  // The closed device's end is not the session's.
  chatroom.detach(ann, phone);
  assertEquals(ann.devices, [laptop, tablet]);
  assertEquals(bob.take(), []);
  assertEquals(metrics.devicesAdded.get(), 2);
});

Deno.test("with max_devices 1, a new device takes the session over", () => {
  const { chatroom, phone, ann } = withAnnAndBob(1);
  const laptop = device(chatroom, ann);
  assertEquals(phone.closed, "too_many_devices");
  assertEquals(ann.devices, [laptop]);
});

Deno.test("a new device hears its room's topic, as a new session does", () => {
  const { chatroom, phone, ann } = withAnnAndBob();
  const mod = new FakeSink();
  const modUser = connect(chatroom, mod, {
    identity: { name: "Mod", roles: new Set<Role>(["moderator"]), expiresAt: undefined },
  });
  receive(chatroom, modUser, "!topic Be kind");
  phone.take();
  const laptop = device(chatroom, ann, "lobby");
  assertEquals(laptop.take().filter(([, body]) => body.startsWith("Topic")), [
    ["SERVER", "Topic of lobby: Be kind"],
  ]);
  assertEquals(phone.take(), [], "only the new device is welcomed");
});
