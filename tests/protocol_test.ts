import { assert, assertEquals } from "@std/assert";
import type { ChatEvent, MessageEvent } from "../src/vocabulary/events.ts";
import type { ClientRequest } from "../src/vocabulary/requests.ts";
import { COMMANDS } from "../src/vocabulary/commands.ts";
import { decodeCommand, decodeV1Frame, encodeV1Frame } from "../src/protocol/v1.ts";
import { decodeV2Frame, encodeV2Event, type V2Input } from "../src/protocol/v2.ts";

const sentAt = Date.parse("2026-11-26T09:30:00.000Z");
const base = { id: "7", sentAt, origin: "SERVER", body: "shown" } as const;
const SENT_AT = "2026-11-26T09:30:00.000Z";

function invalid(reason: string): V2Input {
  return {
    kind: "request",
    request: { type: "invalid", problem: { code: "bad_request", reason } },
  };
}

Deno.test("v1 reads text as a message and ! lines as the requests they spell", () => {
  const cases: [string, ClientRequest][] = [
    ["hello there", { type: "say", text: "hello there" }],
    [" !not a command", { type: "say", text: " !not a command" }],
    ["!help", { type: "help" }],
    ["!HELP Join ", { type: "help", command: "Join" }],
    ["!about", { type: "about" }],
    ["!setname  Big \t Bird ", { type: "setname", name: "Big \t Bird" }],
    ["!who", { type: "members" }],
    ["!env", { type: "env" }],
    ["!Ping", { type: "ping" }],
    ["!pm Bob see you\nat noon", { type: "pm", to: "Bob", text: "see you\nat noon" }],
    ["!pm Bob", { type: "invalid", problem: { code: "usage", usage: "!pm <user> <message>" } }],
    ["!pm", { type: "invalid", problem: { code: "usage", usage: "!pm <user> <message>" } }],
    ["!join games", { type: "join", room: "games" }],
    ["!join", { type: "invalid", problem: { code: "usage", usage: "!join <room>" } }],
    ["!leave", { type: "leave" }],
    ["!rooms", { type: "rooms" }],
    ["!me waves", { type: "me", text: "waves" }],
    ["!history", { type: "history" }],
    ["!history 12345678", { type: "history", count: 12345678 }],
    ["!history lots", { type: "invalid", problem: { code: "usage", usage: "!history [n]" } }],
    ["!history 5 6", { type: "invalid", problem: { code: "usage", usage: "!history [n]" } }],
    ["!who is here", { type: "members" }],
    ["!topic", { type: "topic" }],
    ['!topic ""', { type: "topic", text: "" }],
    ["!topic Free  pizza", { type: "topic", text: "Free  pizza" }],
    ["!kick Bob spamming the room", { type: "kick", user: "Bob", reason: "spamming the room" }],
    ["!kick", { type: "invalid", problem: { code: "usage", usage: "!kick <user> [reason]" } }],
    ["!ban addr:10.0.0.0/8 2h", { type: "ban", target: "addr:10.0.0.0/8", seconds: 7200 }],
    ["!mute Bob 400d", {
      type: "invalid",
      problem: { code: "usage", usage: "!mute <target> <duration> [reason]" },
    }],
    ["!slow 3601", { type: "invalid", problem: { code: "usage", usage: "!slow <seconds>" } }],
    ["!dance wildly", {
      type: "invalid",
      problem: { code: "unknown_command", command: "!dance wildly" },
    }],
    ["!", { type: "invalid", problem: { code: "unknown_command", command: "!" } }],
    // v2 only: the text protocol has no spelling of them.
    ["!typing", { type: "invalid", problem: { code: "unknown_command", command: "!typing" } }],
    ["!edit a1.2f new", {
      type: "invalid",
      problem: { code: "unknown_command", command: "!edit a1.2f new" },
    }],
    ["!delete a1.2f", { type: "delete", id: "a1.2f" }],
    ["!delete a1.2f games", { type: "delete", id: "a1.2f", room: "games" }],
    ["!delete", { type: "invalid", problem: { code: "usage", usage: "!delete <id> [room]" } }],
  ];
  for (const [frame, request] of cases) assertEquals(decodeV1Frame(frame), request, frame);
});

Deno.test("every command spells the request of its type", () => {
  for (const command of COMMANDS) {
    const request = decodeCommand(`!${command.name} x`);
    assert(request.type === command.type || request.type === "invalid", command.name);
  }
});
const message: MessageEvent = {
  ...base,
  origin: "USER",
  type: "message",
  room: "lobby",
  from: "Ann",
  text: "hi",
  seq: 3,
  emote: false,
  epoch: "e1",
};

Deno.test("v2 decodes every request", () => {
  const cases: [unknown, V2Input][] = [
    [{ type: "hello" }, {
      kind: "start",
      start: { name: undefined, room: undefined, resumable: true },
    }],
    [{ type: "hello", name: "Ann", room: "games" }, {
      kind: "start",
      start: { name: "Ann", room: "games", resumable: true },
    }],
    [
      { type: "resume", name: "Ann", token: "t", room: { name: "games", epoch: "e1", seq: 4 } },
      {
        kind: "start",
        start: {
          name: "Ann",
          token: "t",
          room: "games",
          epoch: "e1",
          lastSeq: 4,
          resumable: true,
          resuming: true,
        },
      },
    ],
    [
      { type: "resume", name: "Ann", token: "t", rooms: { games: 4 } },
      {
        kind: "start",
        start: {
          name: "Ann",
          token: "t",
          room: "games",
          lastSeq: 4,
          resumable: true,
          resuming: true,
        },
      },
    ],
    [
      { type: "resume", name: "Ann" },
      {
        kind: "start",
        start: {
          name: "Ann",
          token: undefined,
          room: undefined,
          lastSeq: undefined,
          resumable: true,
          resuming: true,
        },
      },
    ],
    [{ type: "say", text: "hi" }, { kind: "request", request: { type: "say", text: "hi" } }],
    [{ type: "me", text: "waves" }, { kind: "request", request: { type: "me", text: "waves" } }],
    [{ type: "command", text: "!who" }, { kind: "request", request: { type: "members" } }],
    [
      { type: "command", text: "hi" },
      {
        kind: "request",
        request: { type: "invalid", problem: { code: "unknown_command", command: "hi" } },
      },
    ],
    [{ type: "help" }, { kind: "request", request: { type: "help" } }],
    [{ type: "help", command: "pm" }, {
      kind: "request",
      request: { type: "help", command: "pm" },
    }],
    [{ type: "about" }, { kind: "request", request: { type: "about" } }],
    [{ type: "env" }, { kind: "request", request: { type: "env" } }],
    [{ type: "ping" }, { kind: "request", request: { type: "ping" } }],
    [{ type: "typing" }, { kind: "request", request: { type: "typing" } }],
    [{ type: "edit", id: "a1.2f", text: "fixed" }, {
      kind: "request",
      request: { type: "edit", id: "a1.2f", text: "fixed" },
    }],
    [{ type: "delete", id: "a1.2f" }, {
      kind: "request",
      request: { type: "delete", id: "a1.2f" },
    }],
    [{ type: "delete", id: "x".repeat(129) }, {
      kind: "request",
      request: {
        type: "invalid",
        problem: {
          code: "bad_request",
          reason: '"delete" needs "id": a message\'s id (at most 128 characters)',
        },
      },
    }],
    [{ type: "join", room: "games" }, {
      kind: "request",
      request: { type: "join", room: "games" },
    }],
    [{ type: "leave" }, { kind: "request", request: { type: "leave" } }],
    [{ type: "leave", seen: {} }, { kind: "request", request: { type: "leave", seen: new Map() } }],
    [{ type: "kick", user: "Bob", reason: " " }, {
      kind: "request",
      request: { type: "kick", user: "Bob" },
    }],
    [{ type: "help", command: "" }, { kind: "request", request: { type: "help" } }],
    [{ type: "topic", text: "" }, { kind: "request", request: { type: "topic", text: "" } }],
    [{ type: "kick", user: "" }, {
      kind: "request",
      request: { type: "invalid", problem: { code: "usage", usage: "!kick <user> [reason]" } },
    }],
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

Deno.test("v2 rooms may give where the client stopped reading", () => {
  assertEquals(
    decodeV2Frame('{"type":"rooms","seen":{"lobby":{"epoch":"e1","seq":4},"games":{"seq":0}}}'),
    [{
      kind: "request",
      request: {
        type: "rooms",
        seen: new Map([["lobby", { epoch: "e1", seq: 4 }], ["games", {
          epoch: undefined,
          seq: 0,
        }]]),
      },
    }],
  );
  for (
    const seen of ["[]", '{"lobby":4}', '{"lobby":{"seq":-1}}', '{"lobby":{"epoch":1,"seq":1}}']
  ) {
    assertEquals(decodeV2Frame(`{"type":"rooms","seen":${seen}}`), [
      invalid('"rooms" needs "seen": an object of at most 1000 room names, each {"epoch", "seq"}'),
    ]);
  }
});

Deno.test("v2 reads a JSON array of requests in order", () => {
  assertEquals(decodeV2Frame('[{"type":"say","text":"a"},{"type":"leave"},{"type":"nope"}]'), [
    { kind: "request", request: { type: "say", text: "a" } },
    { kind: "request", request: { type: "leave" } },
    invalid('unknown type "nope"'),
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
    ['{"type":"say"}', '"say" needs "text": a string'],
    ['{"type":"say","text":5}', '"say" needs "text": a string'],
    ['{"type":"pm","to":5,"text":"x"}', '"pm" needs "to": a user\'s name'],
    ['{"type":"join","room":["a"]}', '"join" needs "room": a room\'s name'],
    [
      '{"type":"mute","user":"Bob","seconds":34560000}',
      '"mute" needs "seconds": a whole number of seconds from 1 to 31536000',
    ],
    [
      '{"type":"slow","seconds":3601}',
      '"slow" needs "seconds": a whole number of seconds from 0 to 3600',
    ],
    [`{"type":"kick","user":"${"x".repeat(65)}"}`, '"kick" needs "user": a user\'s name'],
    ['{"type":"hello","name":1}', '"hello" needs a string "name"'],
    ['{"type":"hello","room":1}', '"hello" needs a string "room"'],
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
    ['{"type":"history","count":1.5}', '"history" needs "count": a whole number of at least 1'],
    ['{"type":"history","count":0}', '"history" needs "count": a whole number of at least 1'],
    [
      '{"type":"resume","name":"a","room":"lobby"}',
      '"room" must be {"name", "epoch", "seq"}: where you were and what you saw',
    ],
    ['{"type":"resume","name":"a","room":{"seq":1}}', '"room" needs a string "name"'],
    [
      '{"type":"resume","name":"a","room":{"name":"x","epoch":3}}',
      '"room" needs a string "epoch", from the last welcome, members or history',
    ],
    [
      '{"type":"resume","name":"a","room":{"name":"x","seq":-2}}',
      '"seq" in "room" must be a whole number of at least 0',
    ],
    ['{"type":"help","command":1}', '"help" needs "command": a command\'s name'],
  ];
  for (const [frame, reason] of cases) {
    assertEquals(decodeV2Frame(frame), [invalid(reason)], frame);
  }
});

Deno.test("v2 encodes every event type", () => {
  const common = { id: "7", sentAt: SENT_AT };
  const cases: [ChatEvent, Record<string, unknown>][] = [
    [message, {
      type: "message",
      ...common,
      room: "lobby",
      epoch: "e1",
      from: "Ann",
      text: "hi",
      seq: 3,
    }],
    [
      { ...message, type: "history", origin: "HISTORY", emote: true, epoch: "e1" },
      {
        type: "history",
        ...common,
        room: "lobby",
        epoch: "e1",
        from: "Ann",
        text: "hi",
        seq: 3,
        emote: true,
      },
    ],
    [
      { ...base, type: "welcome", name: "Ann", room: "lobby", epoch: "e1", token: "secret" },
      {
        type: "welcome",
        ...common,
        room: "lobby",
        epoch: "e1",
        name: "Ann",
        token: "secret",
        text: "shown",
      },
    ],
    [
      { ...base, type: "welcome", name: "Mo", room: "lobby", epoch: "e1", token: "t", rank: 1 },
      {
        type: "welcome",
        ...common,
        room: "lobby",
        epoch: "e1",
        name: "Mo",
        token: "t",
        text: "shown",
        rank: 1,
      },
    ],
    [
      { ...base, type: "system", text: "You are now a moderator.", rank: 1 },
      { type: "system", ...common, text: "You are now a moderator.", rank: 1 },
    ],
    [
      { ...base, origin: "PRIVATE", type: "private", from: "Ann", to: "Bob", text: "psst" },
      { type: "private", ...common, from: "Ann", to: "Bob", text: "psst" },
    ],
    [
      { ...base, type: "presence", action: "join", room: "lobby", epoch: "e1", from: "Ann" },
      {
        type: "presence",
        ...common,
        room: "lobby",
        epoch: "e1",
        action: "join",
        from: "Ann",
        text: "shown",
      },
    ],
    [
      {
        ...base,
        type: "presence",
        action: "rename",
        room: "lobby",
        epoch: "e1",
        from: "Zed",
        oldName: "Ann",
      },
      {
        type: "presence",
        ...common,
        room: "lobby",
        epoch: "e1",
        action: "rename",
        from: "Zed",
        oldName: "Ann",
        text: "shown",
      },
    ],
    [{ ...base, type: "system", text: "pong!" }, { type: "system", ...common, text: "pong!" }],
    [
      { ...base, type: "system", room: "lobby", epoch: "e1", text: "Topic: tea" },
      { type: "system", ...common, room: "lobby", epoch: "e1", text: "Topic: tea" },
    ],
    [
      { ...base, type: "error", code: "usage", text: "Usage: !me <action>" },
      { type: "error", ...common, code: "usage", text: "Usage: !me <action>" },
    ],
    [
      { ...base, type: "rooms", rooms: [{ name: "lobby", members: 2, lastSeq: 9 }] },
      { type: "rooms", ...common, rooms: [{ name: "lobby", members: 2, lastSeq: 9 }] },
    ],
    [
      { ...base, type: "members", room: "lobby", epoch: "e1", members: ["Ann", "Bob"] },
      { type: "members", ...common, room: "lobby", epoch: "e1", members: ["Ann", "Bob"] },
    ],
    [
      { ...base, type: "gap", room: "lobby", epoch: "e2", reason: "epoch" },
      { type: "gap", ...common, room: "lobby", epoch: "e2", reason: "epoch", text: "shown" },
    ],
    [
      { ...message, change: { target: "2f", action: "edit", author: "Ann" }, text: "fixed" },
      {
        type: "edit",
        ...common,
        room: "lobby",
        epoch: "e1",
        seq: 3,
        from: "Ann",
        target: "2f",
        text: "fixed",
      },
    ],
    [
      {
        ...message,
        from: "Mod",
        text: "",
        change: { target: "2f", action: "delete", author: "Ann" },
      },
      {
        type: "delete",
        ...common,
        room: "lobby",
        epoch: "e1",
        seq: 3,
        from: "Mod",
        target: "2f",
        author: "Ann",
      },
    ],
    [
      { ...message, type: "history", origin: "HISTORY", text: "fixed", edited: true },
      {
        type: "history",
        ...common,
        room: "lobby",
        epoch: "e1",
        from: "Ann",
        text: "fixed",
        seq: 3,
        edited: true,
      },
    ],
    [
      { ...message, type: "history", origin: "HISTORY", text: "", removed: true },
      {
        type: "history",
        ...common,
        room: "lobby",
        epoch: "e1",
        from: "Ann",
        text: "",
        seq: 3,
        removed: true,
      },
    ],
    [
      { ...base, type: "typing", room: "lobby", from: "Ann" },
      { type: "typing", ...common, room: "lobby", from: "Ann" },
    ],
    [
      { ...base, type: "help", commands: [{ name: "ping", usage: "!ping", summary: "pong" }] },
      {
        type: "help",
        ...common,
        commands: [{ name: "ping", usage: "!ping", summary: "pong" }],
        text: "shown",
      },
    ],
  ];
  for (const [event, wire] of cases) {
    assertEquals(JSON.parse(encodeV2Event(event, SENT_AT)), wire, event.type);
  }
});

Deno.test("the text protocol shows body, origin and sentAt only", () => {
  const event: ChatEvent = {
    ...base,
    type: "members",
    room: "lobby",
    epoch: "e1",
    members: ["Ann"],
  };
  assertEquals(
    encodeV1Frame(event, false, SENT_AT),
    `{"body":"shown","origin":"SERVER","sentAt":"${SENT_AT}"}`,
  );
  assertEquals(
    encodeV1Frame(message, true, SENT_AT),
    `{"body":"shown","origin":"SELF","sentAt":"${SENT_AT}"}`,
  );
});
