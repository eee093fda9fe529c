/** Thousands of random inputs through both decoders and the chat's request path. */

import { assert, assertEquals } from "@std/assert";
import { createMetrics } from "../../src/metrics.ts";
import { nameKey, nameProblem } from "../../src/text/names.ts";
import { decodeCommand } from "../../src/protocol/v1.ts";
import { decodeV2Frame } from "../../src/protocol/v2.ts";
import {
  connect,
  createTestChatroom,
  FakeClock,
  FakeSink,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";
import { seededRandom } from "../_random.ts";

const PIECES = [
  "!",
  "!!",
  "!pm",
  "!PM",
  "!setname",
  "!SetName",
  "!who",
  "!help",
  "!about",
  "!env",
  "!ping",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  " ".repeat(500),
  "\u3000",
  "\u00a0",
  "\ud800",
  "\udfff",
  "😀",
  "\ud83d",
  "\u202e",
  "\u202d",
  "\u200b",
  "\u200f",
  "\ufeff",
  "\u0000",
  "\u0007",
  "\u001b[2J",
  "\u0301",
  "a",
  "Z",
  "é",
  "名",
  "ＡＬＩＣＥ",
  "Guest1",
  "guest2",
  "GUEST3",
  "admin",
  "root",
  ".",
  "-",
  "_",
  "$",
  "$name",
  "$$",
  '"',
  "x".repeat(40),
  "Bob",
  "bob",
];

/** Unsafe characters that must never reach another user in a chat message. */
const UNSAFE = /(?!\t)[\p{Cc}\p{Cf}]/u;

Deno.test("random input never escapes as an exception or corrupts the room", () => {
  const random = seededRandom(20261126);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const randomText = (): string => {
    const parts: string[] = [];
    const count = Math.floor(random() * 10);
    for (let i = 0; i < count; i++) {
      parts.push(
        random() < 0.15 ? String.fromCharCode(Math.floor(random() * 0x10000)) : pick(PIECES),
      );
    }
    return parts.join("");
  };

  const metrics = createMetrics();
  const clock = new FakeClock();
  // Flood control is tested on its own; here every request should reach the chat.
  const flood = {
    rate: 1000,
    burst: 1000,
    disconnectAfter: 60,
    addressRate: 1000,
    addressBurst: 1000,
    roomRate: 1000,
    roomBurst: 1000,
    serverRate: 1000,
    serverBurst: 1000,
  };
  const config = { ...TEST_CHAT_CONFIG, flood };
  const chatroom = createTestChatroom({ config, metrics, now: clock.now });
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
  const users = sinks.map((sink) => connect(chatroom, sink));
  const reserved = new Set(TEST_CHAT_CONFIG.reservedNames.map(nameKey));

  for (let i = 0; i < 5000; i++) {
    const text = randomText();
    // Every command decoded alone; the text as a frame, as every arity of !pm, and as v2 fields.
    decodeCommand(`!${text}`);
    const sender = pick(users);
    receive(chatroom, sender, text);
    receive(chatroom, sender, `!pm ${"x ".repeat(i % 4)}${text}`);
    const fields = { text, to: text, room: text, name: text, command: text };
    for (const type of ["say", "me", "pm", "join", "setname", "help", "command"]) {
      for (const input of decodeV2Frame(JSON.stringify({ ...fields, type }))) {
        if (input.kind === "request") chatroom.handle(sender, input.request);
      }
    }
    if (sender.room.name !== "lobby") chatroom.handle(sender, { type: "leave" });
    clock.advance(1000);

    assertEquals(metrics.errors.get(), 0, `an exception for ${JSON.stringify(text)}`);
    assertEquals(chatroom.users(), users);
    assertEquals(new Set(users.map((user) => nameKey(user.name))).size, users.length);
    for (const user of users) {
      assertEquals(nameProblem(user.name, reserved), undefined, user.name);
      assertEquals(chatroom.findUser(user.name), user);
    }
    for (const sink of sinks) {
      sink.own.splice(0);
      for (const event of sink.events.splice(0)) {
        assert(event.body.isWellFormed(), JSON.stringify(event.body));
        if (event.origin === "USER" || event.origin === "PRIVATE") {
          assert(!UNSAFE.test(event.body), JSON.stringify(event.body));
        }
      }
    }
  }
});
