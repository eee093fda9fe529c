import { assertEquals, assertThrows } from "@std/assert";
import type { ChatEvent, MessageEvent } from "../src/events.ts";
import { encodeTextFrame } from "../src/protocol/text.ts";
import { isoTime } from "../src/protocol/time.ts";
import { decodeV2Frame, encodeV2Frame, type V2Input } from "../src/protocol/v2.ts";

const sentAt = new Date("2026-11-26T09:30:00.000Z");
const base = { id: "7", sentAt, origin: "SERVER", body: "shown" } as const;
const message: MessageEvent = {
  ...base,
  origin: "USER",
  type: "message",
  room: "lobby",
  from: "Ann",
  text: "hi",
  seq: 3,
  emote: false,
};

Deno.test("v2 decodes every request", () => {
  const cases: [unknown, V2Input][] = [
    [{ type: "hello" }, { kind: "start", start: { name: undefined } }],
    [{ type: "hello", name: "Ann" }, { kind: "start", start: { name: "Ann" } }],
    [
      { type: "resume", name: "Ann", token: "t", rooms: { games: 4 } },
      { kind: "start", start: { name: "Ann", token: "t", room: "games", lastSeq: 4 } },
    ],
    [
      { type: "resume", name: "Ann" },
      {
        kind: "start",
        start: { name: "Ann", token: undefined, room: undefined, lastSeq: undefined },
      },
    ],
    [{ type: "say", text: "hi" }, { kind: "request", request: { type: "say", text: "hi" } }],
    [{ type: "me", text: "waves" }, { kind: "request", request: { type: "me", text: "waves" } }],
    [
      { type: "command", text: "!who" },
      { kind: "request", request: { type: "command", text: "!who" } },
    ],
    [{ type: "join", room: "games" }, {
      kind: "request",
      request: { type: "join", room: "games" },
    }],
    [{ type: "leave" }, { kind: "request", request: { type: "leave" } }],
    [
      { type: "pm", to: "Bob", text: "psst" },
      { kind: "request", request: { type: "pm", to: "Bob", text: "psst" } },
    ],
    [
      { type: "setname", name: "Zed" },
      { kind: "request", request: { type: "setname", name: "Zed" } },
    ],
    [{ type: "rooms" }, { kind: "request", request: { type: "rooms" } }],
    [{ type: "members" }, { kind: "request", request: { type: "members" } }],
    [{ type: "history" }, { kind: "request", request: { type: "history" } }],
    [{ type: "history", count: 5 }, {
      kind: "request",
      request: { type: "history", count: 5 },
    }],
  ];
  for (const [frame, expected] of cases) {
    assertEquals(decodeV2Frame(JSON.stringify(frame)), [expected], JSON.stringify(frame));
  }
});

Deno.test("v2 reads a JSON array of requests in order", () => {
  assertEquals(decodeV2Frame('[{"type":"say","text":"a"},{"type":"leave"},{"type":"nope"}]'), [
    { kind: "request", request: { type: "say", text: "a" } },
    { kind: "request", request: { type: "leave" } },
    { kind: "invalid", reason: 'unknown type "nope"' },
  ]);
});

Deno.test("v2 explains what is wrong with a malformed frame", () => {
  const cases: [string, string][] = [
    ["not json", "the frame is not JSON"],
    ["null", 'a request must be a JSON object with a "type"'],
    ["[[]]", 'a request must be a JSON object with a "type"'],
    [JSON.stringify(Array(257).fill({ type: "rooms" })), "a frame may carry at most 256 requests"],
    ["{}", 'the frame needs a string "type"'],
    ['{"type":"dance"}', 'unknown type "dance"'],
    ['{"type":"say"}', '"say" needs a string "text"'],
    ['{"type":"say","text":5}', '"say" needs a string "text"'],
    ['{"type":"pm","text":"x"}', '"pm" needs a string "to"'],
    ['{"type":"join","room":["a"]}', '"join" needs a string "room"'],
    ['{"type":"hello","name":1}', '"hello" needs a string "name"'],
    ['{"type":"resume"}', '"resume" needs a string "name"'],
    [
      '{"type":"resume","name":"a","rooms":[]}',
      '"rooms" must map a room name to the last seq seen there',
    ],
    [
      '{"type":"resume","name":"a","rooms":{"x":1,"y":2}}',
      '"rooms" may name one room, the one to return to',
    ],
    [
      '{"type":"resume","name":"a","rooms":{"x":-1}}',
      'a seq in "rooms" must be a whole number of at least 0',
    ],
    ['{"type":"history","count":1.5}', '"count" must be a whole number of at least 0'],
  ];
  for (const [frame, reason] of cases) {
    assertEquals(decodeV2Frame(frame), [{ kind: "invalid", reason }], frame);
  }
});

Deno.test("v2 encodes every event type", () => {
  const common = { id: "7", sentAt: "2026-11-26T09:30:00.000Z" };
  const cases: [ChatEvent, Record<string, unknown>][] = [
    [message, { type: "message", ...common, room: "lobby", from: "Ann", text: "hi", seq: 3 }],
    [
      { ...message, type: "history", origin: "HISTORY", emote: true },
      { type: "history", ...common, room: "lobby", from: "Ann", text: "hi", seq: 3, emote: true },
    ],
    [
      { ...base, type: "welcome", name: "Ann", room: "lobby", token: "secret" },
      { type: "welcome", ...common, room: "lobby", name: "Ann", token: "secret", text: "shown" },
    ],
    [
      { ...base, origin: "PRIVATE", type: "private", from: "Ann", to: "Bob", text: "psst" },
      { type: "private", ...common, from: "Ann", to: "Bob", text: "psst" },
    ],
    [
      { ...base, type: "presence", action: "join", room: "lobby", from: "Ann" },
      { type: "presence", ...common, room: "lobby", action: "join", from: "Ann", text: "shown" },
    ],
    [
      { ...base, type: "presence", action: "rename", room: "lobby", from: "Zed", oldName: "Ann" },
      {
        type: "presence",
        ...common,
        room: "lobby",
        action: "rename",
        from: "Zed",
        oldName: "Ann",
        text: "shown",
      },
    ],
    [{ ...base, type: "system", text: "pong!" }, { type: "system", ...common, text: "pong!" }],
    [
      { ...base, type: "error", code: "usage", text: "Usage: !me <action>" },
      { type: "error", ...common, code: "usage", text: "Usage: !me <action>" },
    ],
    [
      { ...base, type: "rooms", rooms: [{ name: "lobby", members: 2, lastSeq: 9 }] },
      { type: "rooms", ...common, rooms: [{ name: "lobby", members: 2, lastSeq: 9 }] },
    ],
    [
      { ...base, type: "members", room: "lobby", members: ["Ann", "Bob"] },
      { type: "members", ...common, room: "lobby", members: ["Ann", "Bob"] },
    ],
  ];
  for (const [event, wire] of cases) {
    assertEquals(JSON.parse(encodeV2Frame(event)), wire, event.type);
  }
});

Deno.test("v2 sends a message's author the same frame as everyone else", () => {
  const others = encodeV2Frame(message);
  assertEquals(encodeV2Frame({ ...message, origin: "SELF" }), others);
  // Only the author's copy is taken for the event just encoded.
  const edited: MessageEvent = { ...message, text: "bye" };
  assertEquals(JSON.parse(encodeV2Frame(edited)).text, "bye");
  assertEquals(JSON.parse(encodeV2Frame({ ...message, origin: "HISTORY" })).text, "hi");
});

Deno.test("the text protocol shows body, origin and sentAt only", () => {
  const event: ChatEvent = { ...base, type: "members", room: "lobby", members: ["Ann"] };
  assertEquals(
    encodeTextFrame(event),
    '{"body":"shown","origin":"SERVER","sentAt":"2026-11-26T09:30:00.000Z"}',
  );
});

Deno.test("event times are ISO 8601, also when several share a millisecond", () => {
  const times = [0, 1764155100123, 1764155100123, 1764155100124, 0].map((ms) => new Date(ms));
  assertEquals(times.map(isoTime), times.map((date) => date.toISOString()));
  assertThrows(() => isoTime(new Date(NaN)), RangeError);
});
