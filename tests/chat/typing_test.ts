/**
 * Someone typing: shown to the other members of their room only, once
 * every 2 s at most, never from a muted user, and across instances the same.
 */

import { assertEquals } from "@std/assert";
import type { Chatroom } from "../../src/chat/mod.ts";
import type { User } from "../../src/chat/user.ts";
import type { ChatEvent } from "../../src/vocabulary/events.ts";
import { FakeCluster } from "../_fake_cluster.ts";
import {
  chatroomWith,
  connect,
  createTestChatroom,
  FakeSink,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";
const FAST = { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 };

/** The typing events among `events`, as `[room, from]`. */
function typings(events: readonly ChatEvent[]): [string, string][] {
  return events.flatMap((event) => event.type === "typing" ? [[event.room, event.from]] : []);
}

const typing = (chatroom: Chatroom, user: User) => chatroom.handle(user, { type: "typing" });

Deno.test("typing is shown to the room's other members, once every 2 s at most", () => {
  let now = 1_000_000;
  const { chatroom, sinks, users } = chatroomWith(3, {
    now: () => now,
    config: { ...TEST_CHAT_CONFIG, flood: FAST },
  });
  const [ann, bob, carol] = users;
  receive(chatroom, carol, "!join elsewhere");
  for (const sink of sinks) sink.take();

  typing(chatroom, ann);
  assertEquals(typings(sinks[1].events), [["lobby", ann.name]]);
  assertEquals(sinks[0].events, [], "not to the one typing, and no answer");
  assertEquals(sinks[2].events, [], "not to another room");
  const [event] = sinks[1].events;
  assertEquals(event.sentAt, now);

  now += 1999;
  typing(chatroom, ann);
  assertEquals(typings(sinks[1].events).length, 1, "a second one within 2 s is dropped");
  now += 1;
  typing(chatroom, ann);
  assertEquals(typings(sinks[1].events).length, 2, "2 s later it counts again");

  // In another room, the count starts afresh.
  receive(chatroom, ann, "!join elsewhere");
  sinks[2].take();
  typing(chatroom, ann);
  assertEquals(typings(sinks[2].events), [["elsewhere", ann.name]]);
  assertEquals(typings(sinks[1].events).length, 2);
  typing(chatroom, bob);
  assertEquals(typings(sinks[0].events), [], "bob's room is not ann's any more");
});

Deno.test("a muted user's typing is shown to nobody", async () => {
  const chatroom = createTestChatroom({
    auth: { tokenMode: false, expiryWarning: 60, operatorPassword: PASSWORD },
    config: { ...TEST_CHAT_CONFIG, flood: FAST },
  });
  const [modSink, eveSink] = [new FakeSink(), new FakeSink()];
  const mod = connect(chatroom, modSink, { name: "Mod" });
  const eve = connect(chatroom, eveSink, { name: "Eve" });
  receive(chatroom, mod, `!op ${PASSWORD}`);
  receive(chatroom, mod, "!mute Eve 5m");
  await modSink.waitFor((event) => event.body.startsWith("Done: Eve is muted"), "the mute");
  modSink.take();
  eveSink.take();
  typing(chatroom, eve);
  assertEquals(modSink.events, []);
  assertEquals(eveSink.events, [], "and no answer to the muted user either");
});

Deno.test("typing reaches the room's members on other instances", async () => {
  const cluster = new FakeCluster();
  const [a, b] = [1, 2].map(() =>
    createTestChatroom({
      broker: cluster.join(),
      config: { ...TEST_CHAT_CONFIG, flood: FAST },
    })
  );
  const welcomed = async (chatroom: Chatroom, name: string) => {
    const sink = new FakeSink();
    const user = connect(chatroom, sink, { name });
    await sink.waitFor((event) => event.type === "welcome", "welcome");
    sink.take();
    return { sink, user };
  };
  const ann = await welcomed(a, "Ann");
  const bob = await welcomed(b, "Bob");
  const bea = await welcomed(a, "Bea");
  for (const { sink } of [ann, bob, bea]) sink.take();
  typing(a, ann.user);
  assertEquals(typings(bob.sink.events), [["lobby", "Ann"]]);
  assertEquals(typings(bea.sink.events), [["lobby", "Ann"]]);
  assertEquals(ann.sink.events, []);
});

Deno.test("a room passes on so much typing per second, apart from its messages", () => {
  const flood = { ...FAST, roomRate: 1, roomBurst: 1 };
  const { chatroom, sinks, users } = chatroomWith(4, {
    config: { ...TEST_CHAT_CONFIG, flood },
  });
  for (const user of users.slice(1)) typing(chatroom, user);
  assertEquals(typings(sinks[0].events).length, 1, "one of three");
  receive(chatroom, users[1], "still said");
  assertEquals(sinks[0].events.at(-1)?.body, `${users[1].name}: still said`);
});
