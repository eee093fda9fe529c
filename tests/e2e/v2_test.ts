/** Protocol v2 over real sockets: every event type, resume, and mixing with the text protocol. */

import { assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import {
  FLOOD_OFF,
  startTestServer,
  TestClient,
  type TestServer,
  type V2Frame,
  within,
} from "./_client.ts";

/** Flood control out of the way; a dropped session ends at once unless a test says otherwise. */
const RELAXED = { chat: { flood: FLOOD_OFF, sessionLinger: 0 } };

/** The frame without its per-event `id` and `sentAt`, for exact comparisons. */
function strip(frame: V2Frame): Record<string, unknown> {
  const { id: _id, sentAt: _sentAt, ...rest } = frame;
  return rest;
}

async function nextStripped(client: TestClient<V2Frame>): Promise<Record<string, unknown>> {
  return strip(await client.next());
}

function send(client: TestClient<V2Frame>, request: Record<string, unknown>): void {
  client.send(JSON.stringify(request));
}

async function withServer(
  body: (server: TestServer) => Promise<void>,
  options: { sessionLinger?: number } = {},
): Promise<void> {
  const server = startTestServer({ chat: { ...RELAXED.chat, ...options } });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

Deno.test("v2: every event type", async (t) => {
  await withServer(async (server) => {
    const { client: ann, welcome } = await server.joinV2("Ann");

    await t.step("welcome", () => {
      assertEquals(Object.keys(welcome).sort(), [
        "epoch",
        "id",
        "name",
        "room",
        "sentAt",
        "text",
        "token",
        "type",
      ]);
      assertEquals([welcome.name, welcome.room], ["Ann", "lobby"]);
      assertMatch(welcome.token as string, /^[0-9a-f-]{36}$/);
      assertMatch(welcome.sentAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    const { client: bob } = await server.joinV2("Bob");

    await t.step("presence: join", async () => {
      assertEquals(await nextStripped(ann), {
        type: "presence",
        room: "lobby",
        epoch: welcome.epoch,
        action: "join",
        from: "Bob",
        text: "Bob has connected!",
      });
    });

    await t.step("message, to the others and to the sender", async () => {
      send(ann, { type: "say", text: "hello" });
      const expected = {
        type: "message",
        room: "lobby",
        epoch: welcome.epoch,
        from: "Ann",
        text: "hello",
        seq: 1,
      };
      const atBob = await bob.next();
      const atAnn = await ann.next();
      assertEquals(strip(atBob), expected);
      assertEquals(strip(atAnn), expected);
      assertEquals(atBob.id, atAnn.id);
    });

    await t.step("message with emote", async () => {
      send(bob, { type: "me", text: "waves" });
      assertEquals(await nextStripped(ann), {
        type: "message",
        room: "lobby",
        epoch: welcome.epoch,
        from: "Bob",
        text: "waves",
        seq: 2,
        emote: true,
      });
      await bob.next();
    });

    await t.step("history, for a newcomer", async () => {
      const { client: cat } = await server.joinV2("Cat");
      assertEquals(await nextStripped(cat), {
        type: "history",
        room: "lobby",
        epoch: welcome.epoch,
        from: "Ann",
        text: "hello",
        seq: 1,
      });
      assertEquals((await cat.next()).seq, 2);
      await cat.close();
      await ann.waitFor((frame) => frame.action === "leave");
      await bob.waitFor((frame) => frame.action === "leave");
    });

    await t.step("private", async () => {
      send(ann, { type: "pm", to: "bob", text: "psst" });
      const expected = { type: "private", from: "Ann", to: "Bob", text: "psst" };
      assertEquals(await nextStripped(bob), expected);
      assertEquals(await nextStripped(ann), expected);
    });

    await t.step("system, for a command", async () => {
      send(ann, { type: "command", text: "!ping" });
      assertEquals(await nextStripped(ann), { type: "system", text: "pong!" });
    });

    await t.step("error, with a stable code", async () => {
      const cases: [Record<string, unknown>, string, string][] = [
        [{ type: "dance" }, "bad_request", 'Bad request: unknown type "dance"'],
        [
          { type: "pm", to: "Nobody", text: "hi" },
          "user_not_found",
          "!pm error: user Nobody not found",
        ],
        [{ type: "command", text: "!fly" }, "unknown_command", '"!fly" is not a valid command'],
        [{ type: "command", text: "!me" }, "usage", "Usage: !me <action>"],
        [
          { type: "setname", name: "bob" },
          "name_refused",
          'Cannot change your name to "bob": it is taken',
        ],
        [{ type: "hello" }, "bad_request", "Bad request: the session has already started"],
        [
          { type: "join", room: "no way" },
          "room_invalid",
          '"no way" is not a valid room name: use 1 to 32 letters, digits, "-" and "_"',
        ],
      ];
      for (const [request, code, text] of cases) {
        send(ann, request);
        assertEquals(
          await nextStripped(ann),
          { type: "error", code, text },
          JSON.stringify(request),
        );
      }
      ann.socket.send(new Uint8Array([1]));
      assertEquals((await ann.next()).code, "binary_unsupported");
    });

    await t.step("members", async () => {
      send(ann, { type: "members" });
      assertEquals(await nextStripped(ann), {
        type: "members",
        room: "lobby",
        epoch: welcome.epoch,
        members: ["Ann", "Bob"],
      });
    });

    await t.step("presence: rename", async () => {
      send(bob, { type: "setname", name: "Bobby" });
      const expected = {
        type: "presence",
        room: "lobby",
        epoch: welcome.epoch,
        action: "rename",
        from: "Bobby",
        oldName: "Bob",
        text: '"Bob" has changed their name to "Bobby"',
      };
      assertEquals(await nextStripped(ann), expected);
      assertEquals(await nextStripped(bob), expected);
    });

    await t.step("join answers with the new room's members; presence: leave", async () => {
      send(bob, { type: "join", room: "games" });
      const members = await nextStripped(bob);
      assertMatch(members.epoch as string, /^[0-9a-f]{8}$/);
      assertNotEquals(members.epoch, welcome.epoch);
      assertEquals(members, {
        type: "members",
        room: "games",
        epoch: members.epoch,
        members: ["Bobby"],
      });
      assertEquals(await nextStripped(ann), {
        type: "presence",
        room: "lobby",
        epoch: welcome.epoch,
        action: "leave",
        from: "Bobby",
        text: "Bobby has left lobby",
      });
    });

    await t.step("rooms", async () => {
      send(ann, { type: "rooms" });
      assertEquals(await nextStripped(ann), {
        type: "rooms",
        rooms: [{ name: "lobby", members: 1, lastSeq: 2 }, {
          name: "games",
          members: 1,
          lastSeq: 0,
        }],
      });
    });
  });
});

Deno.test("v2: a first frame other than hello starts a plain session", async () => {
  await withServer(async (server) => {
    const client = await TestClient.connect<V2Frame>(server.url, "chat.v2");
    try {
      assertEquals(client.socket.protocol, "chat.v2");
      send(client, { type: "say", text: "straight in" });
      assertEquals((await client.next()).type, "welcome");
      assertEquals((await client.next()).text, "straight in");
    } finally {
      await client.close();
    }
  });
});

Deno.test("v2 and text clients share a room, each in its own format", async () => {
  await withServer(async (server) => {
    const { client: ann, welcome } = await server.joinV2("Ann");
    const old = await server.join("?name=Old");
    await ann.next();
    old.client.send("from the old protocol");
    assertEquals(await nextStripped(ann), {
      type: "message",
      room: "lobby",
      epoch: welcome.epoch,
      from: "Old",
      text: "from the old protocol",
      seq: 1,
    });
    assertEquals(await old.client.nextPair(), ["SELF", "Old: from the old protocol"]);
    send(ann, { type: "say", text: "from v2" });
    assertEquals(await old.client.nextPair(), ["USER", "Ann: from v2"]);
  });
});

Deno.test("v2 resume", async (t) => {
  await t.step(
    "within session_linger: nobody sees a leave, and exactly the missed messages follow",
    async () => {
      await withServer(async (server) => {
        const { client: ann, welcome } = await server.joinV2("Ann");
        const { client: bob } = await server.joinV2("Bob");
        await ann.next();
        send(bob, { type: "say", text: "one" });
        assertEquals((await ann.next()).seq, 1);
        await ann.close();
        for (const text of ["two", "three"]) send(bob, { type: "say", text });
        send(bob, { type: "pm", to: "Ann", text: "psst" });
        await bob.waitFor((frame) => frame.type === "private");

        const again = await TestClient.connect<V2Frame>(server.url, "chat.v2");
        try {
          const room = { name: "lobby", epoch: welcome.epoch, seq: 1 };
          send(again, { type: "resume", name: "Ann", token: welcome.token, room });
          assertEquals(strip(await again.next()).name, "Ann");
          assertEquals((await again.next()).type, "members");
          // Bob keeps talking while Ann catches up: nothing lost, nothing twice.
          send(bob, { type: "say", text: "four" });
          const seen = [];
          for (let i = 0; i < 4; i++) {
            const frame = await again.next();
            seen.push([frame.type, frame.text, frame.seq]);
          }
          assertEquals(seen, [
            ["history", "two", 2],
            ["history", "three", 3],
            ["private", "psst", undefined],
            ["message", "four", 4],
          ]);
          send(bob, { type: "members" });
          const members = await bob.waitFor((frame) => frame.type === "members");
          assertEquals(members.members, ["Ann", "Bob"]);
          assertEquals(bob.pending.filter((frame) => frame.type === "presence"), []);
        } finally {
          await again.close();
        }
      }, { sessionLinger: 30 });
    },
  );

  await t.step(
    "after session_linger: the others saw the leave, and the name was free",
    async () => {
      await withServer(async (server) => {
        const { client: ann, welcome } = await server.joinV2("Ann");
        const { client: bob } = await server.joinV2("Bob");
        await ann.next();
        await ann.close();
        const leave = await bob.waitFor((frame) => frame.action === "leave");
        assertEquals(leave.from, "Ann");
        const again = await TestClient.connect<V2Frame>(server.url, "chat.v2");
        try {
          const room = { name: "lobby", epoch: welcome.epoch, seq: 0 };
          send(again, { type: "resume", name: "Ann", token: welcome.token, room });
          assertEquals(strip(await again.next()).name, "Ann");
          assertEquals((await bob.waitFor((frame) => frame.type === "presence")).action, "join");
        } finally {
          await again.close();
        }
      }, { sessionLinger: 0.2 });
    },
  );

  await t.step("while the old connection is open: it is replaced, silently", async () => {
    await withServer(async (server) => {
      const { client: ann, welcome } = await server.joinV2("Ann");
      const { client: bob } = await server.joinV2("Bob");
      await ann.next();
      const again = await TestClient.connect<V2Frame>(server.url, "chat.v2");
      try {
        send(again, { type: "resume", name: "Ann", token: welcome.token, rooms: { lobby: 0 } });
        assertEquals(strip(await again.next()).name, "Ann");
        assertEquals((await within(ann.closed, "the old socket to close")).code, 4000);
        send(bob, { type: "members" });
        assertEquals((await bob.next()).members, ["Ann", "Bob"]);
      } finally {
        await again.close();
      }
    });
  });

  await t.step("with a wrong token while the session lingers: another name, and why", async () => {
    await withServer(async (server) => {
      const { client: ann } = await server.joinV2("Ann");
      await ann.close();
      const thief = await TestClient.connect<V2Frame>(server.url, "chat.v2");
      try {
        send(thief, { type: "resume", name: "Ann", token: "guessed", room: { name: "lobby" } });
        const welcome = await thief.next();
        assertNotEquals(welcome.name, "Ann");
        assertEquals(strip(await thief.next()), {
          type: "error",
          code: "name_refused",
          text: `Cannot use the name "Ann": it is taken. You are ${welcome.name}.`,
        });
      } finally {
        await thief.close();
      }
    }, { sessionLinger: 30 });
  });
});

Deno.test("v2: the events of one turn go out as one frame holding a JSON array", async () => {
  await withServer(async (server) => {
    const { client: ann } = await server.joinV2("Ann");
    for (const text of ["a", "b", "c"]) {
      send(ann, { type: "say", text });
      await ann.next();
    }
    const raw: string[] = [];
    ann.socket.addEventListener("message", (event) => raw.push(event.data));
    send(ann, { type: "history" });
    for (let i = 0; i < 3; i++) await ann.next();
    assertEquals(raw.length, 1);
    const batch = JSON.parse(raw[0]);
    assertEquals(
      batch.map((event: V2Frame) => [event.type, event.text]),
      [["history", "a"], ["history", "b"], ["history", "c"]],
    );
  });
});

Deno.test("v2: a client may send several requests in one frame", async () => {
  await withServer(async (server) => {
    const client = await TestClient.connect<V2Frame>(server.url, "chat.v2");
    try {
      client.send(JSON.stringify([
        { type: "hello", name: "Ann" },
        { type: "say", text: "one" },
        { type: "say", text: "two" },
        { type: "dance" },
      ]));
      const events = [];
      for (let i = 0; i < 4; i++) {
        const event = await client.next();
        events.push([event.type, event.name ?? event.text]);
      }
      assertEquals(events, [
        ["welcome", "Ann"],
        ["message", "one"],
        ["message", "two"],
        ["error", 'Bad request: unknown type "dance"'],
      ]);
    } finally {
      await client.close();
    }
  });
});
