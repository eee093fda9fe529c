/** The server API against the real handler: every endpoint, with good and bad keys and bodies. */

import { assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { MAX_API_BODY_BYTES } from "../../src/http/api.ts";
import { startTestServer, TestClient, type TestServer, within } from "./_client.ts";

const KEY = "api-key-for-the-tests-0123456789";

/** Calls the API; `key` replaces the right one (`null` sends none). */
async function call(
  server: TestServer,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; type?: string; key?: string | null } = {},
): Promise<[number, Record<string, unknown>]> {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const body = options.raw ??
    (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers["content-type"] = options.type ?? "application/json";
  const response = await fetch(`${server.httpUrl}/api/v1${path}`, { method, headers, body });
  return [response.status, await response.json()];
}

function error(code: string, message: string) {
  return { error: { code, message } };
}

Deno.test("the server API is off without keys", async () => {
  const server = startTestServer();
  try {
    assertEquals(
      await call(server, "GET", "/rooms"),
      [404, error("api_disabled", "the server API is off: set CHAT_API_KEYS to use it")],
    );
  } finally {
    await server.close();
  }
});

Deno.test("the server API", async (t) => {
  const server = startTestServer({ apiKeys: ["another-key-of-sixteen-chars", KEY] });
  try {
    const alice = (await server.join("?name=Alice")).client;
    alice.send("first message");
    await alice.next();

    const keys: [string, string | null][] = [
      ["no Authorization header", null],
      ["a wrong key", "wrong-key-wrong-key-wrong"],
      ["a key with one character changed", KEY.slice(0, -1) + "X"],
    ];
    for (const [what, key] of keys) {
      await t.step(`${what}: 401`, async () => {
        const response = await fetch(`${server.httpUrl}/api/v1/rooms`, {
          headers: key === null ? {} : { authorization: `Bearer ${key}` },
        });
        assertEquals(response.status, 401);
        assertEquals(response.headers.get("www-authenticate"), "Bearer");
        assertEquals(
          await response.json(),
          error("unauthorized", 'send "Authorization: Bearer <key>" with a key of CHAT_API_KEYS'),
        );
      });
    }

    await t.step("GET /health", async () => {
      assertEquals(await call(server, "GET", "/health"), [200, { status: "ok", connections: 1 }]);
    });

    await t.step("GET /rooms", async () => {
      assertEquals(await call(server, "GET", "/rooms"), [200, {
        rooms: [{ name: "lobby", members: 1, lastSeq: 1 }],
      }]);
    });

    await t.step("GET /rooms/:room/members", async () => {
      assertEquals(await call(server, "GET", "/rooms/lobby/members"), [200, {
        room: "lobby",
        members: ["Alice"],
      }]);
      assertEquals(
        await call(server, "GET", "/rooms/nowhere/members"),
        [404, error("not_found", "there is no room nowhere")],
      );
    });

    await t.step("POST /rooms/:room/messages speaks as a bot", async () => {
      const [status, body] = await call(server, "POST", "/rooms/lobby/messages", {
        body: { from: "Deploybot", text: "v2 is out" },
      });
      assertEquals([status, body.room], [202, "lobby"]);
      assertMatch(String(body.id), /\S/);
      assertEquals(await alice.nextPair(), ["USER", "Deploybot: v2 is out"]);
    });

    await t.step("GET /rooms/:room/history, whole or after a position", async () => {
      const [status, body] = await call(server, "GET", "/rooms/lobby/history");
      assertEquals(status, 200);
      const messages = body.messages as Record<string, unknown>[];
      assertEquals(messages.map((m) => [m.seq, m.from, m.text]), [
        [1, "Alice", "first message"],
        [2, "Deploybot", "v2 is out"],
      ]);
      const epoch = String(body.epoch);
      const [, after] = await call(server, "GET", `/rooms/lobby/history?since=1&epoch=${epoch}`);
      assertEquals((after.messages as Record<string, unknown>[]).map((m) => m.seq), [2]);
      assertEquals(after.gap, undefined);
      const [, other] = await call(server, "GET", "/rooms/lobby/history?since=1&epoch=deadbeef");
      assertEquals([other.gap, (other.messages as unknown[]).length], ["epoch", 2]);
      const [, limited] = await call(server, "GET", "/rooms/lobby/history?limit=1");
      assertEquals((limited.messages as Record<string, unknown>[]).map((m) => m.seq), [2]);
      // After a position, the oldest first, and whether more follow: nothing is skipped.
      const [, page] = await call(
        server,
        "GET",
        `/rooms/lobby/history?since=0&epoch=${epoch}&limit=1`,
      );
      assertEquals([(page.messages as Record<string, unknown>[]).map((m) => m.seq), page.more], [[
        1,
      ], true]);
      assertEquals(
        await call(server, "GET", "/rooms/lobby/history?since=-1"),
        [400, error("bad_request", '"since" must be a seq: a whole number of at least 0')],
      );
    });

    await t.step("POST /users/:name/messages sends a private message", async () => {
      const [status] = await call(server, "POST", "/users/alice/messages", {
        body: { from: "Helpdesk", text: "your ticket is closed" },
      });
      assertEquals(status, 202);
      assertEquals(await alice.nextPair(), ["PRIVATE", "PM <- Helpdesk: your ticket is closed"]);
      assertEquals(
        await call(server, "POST", "/users/Nobody/messages", { body: { from: "Bot", text: "hi" } }),
        [404, error("not_found", "No user called Nobody is here.")],
      );
    });

    const badBodies: [string, Parameters<typeof call>[3], number, Record<string, unknown>][] = [
      [
        "a bot named like a user",
        { body: { from: "Alice", text: "hi" } },
        409,
        error("conflict", 'Cannot speak as "Alice": it is taken.'),
      ],
      [
        "a reserved bot name",
        { body: { from: "admin", text: "hi" } },
        400,
        error("bad_request", 'Cannot speak as "admin": it is reserved.'),
      ],
      [
        "no text",
        { body: { from: "Bot" } },
        400,
        error("bad_request", '"say" needs "text": a string'),
      ],
      [
        "a body that is not JSON",
        { raw: "{nope" },
        400,
        error("bad_request", "the body is not JSON"),
      ],
      ["a JSON list", { raw: "[]" }, 400, error("bad_request", "the body must be a JSON object")],
      [
        "another content type",
        { raw: "from=Bot", type: "application/x-www-form-urlencoded" },
        415,
        error("unsupported_media_type", "send a JSON body with Content-Type: application/json"),
      ],
      [
        "a body too large",
        { body: { from: "Bot", text: "x".repeat(MAX_API_BODY_BYTES) } },
        413,
        error("too_large", `the body may be at most ${MAX_API_BODY_BYTES} bytes`),
      ],
    ];
    for (const [what, options, status, body] of badBodies) {
      await t.step(`a message with ${what}: ${status}`, async () => {
        assertEquals(await call(server, "POST", "/rooms/lobby/messages", options), [status, body]);
      });
    }

    await t.step("bans: POST /bans, GET /bans, DELETE /bans/:target", async () => {
      const [status, body] = await call(server, "POST", "/bans", {
        body: { target: "addr:10.0.0.8", seconds: 3600, reason: "scraping" },
      });
      assertEquals([status, body], [201, { ok: true, what: "10.0.0.8 is banned for 1 hour" }]);
      const [, listed] = await call(server, "GET", "/bans");
      const bans = listed.bans as Record<string, unknown>[];
      assertEquals(bans.map((ban) => [ban.address, ban.reason, ban.by]), [
        ["10.0.0.8", "scraping", "api"],
      ]);
      assertEquals(
        await call(server, "POST", "/bans", { body: { target: "x", seconds: 0 } }),
        [
          400,
          error(
            "bad_request",
            '"ban" needs "seconds": a whole number of seconds from 1 to 31536000',
          ),
        ],
      );
      assertEquals(await call(server, "DELETE", "/bans/10.0.0.8"), [200, {
        ok: true,
        what: "10.0.0.8 is no longer banned",
      }]);
      assertEquals(
        await call(server, "DELETE", "/bans/10.0.0.8"),
        [404, error("not_found", "10.0.0.8 is not banned.")],
      );
    });

    await t.step("POST /users/:name/disconnect removes the user with 4003", async () => {
      assertEquals(
        await call(server, "POST", "/users/Alice/disconnect", { body: { reason: "maintenance" } }),
        [200, { ok: true, what: "Alice was removed" }],
      );
      assertEquals(
        await alice.nextPair(),
        ["SERVER", "You were removed from the chat by api: maintenance"],
      );
      assertEquals((await within(alice.closed, "the close")).code, 4003);
      assertEquals(
        await call(server, "POST", "/users/Alice/disconnect"),
        [404, error("not_found", "No user called Alice is here.")],
      );
    });

    await t.step("unknown paths are 404 and wrong methods 405", async () => {
      assertEquals(
        await call(server, "GET", "/nope"),
        [404, error("not_found", "no endpoint at /api/v1/nope")],
      );
      assertEquals(
        await call(server, "DELETE", "/rooms"),
        [405, error("method_not_allowed", "/api/v1/rooms takes GET")],
      );
    });

    await t.step("every answer is counted by class", () => {
      assertEquals(server.metrics.apiRequests.get("5xx"), 0);
      assertEquals(server.metrics.apiRequests.get("4xx") > 10, true);
    });
    const bob = await TestClient.connect(server.url);
    await bob.close();
  } finally {
    await server.close();
  }
});

/** Opens a raw connection and sends the head of a POST declaring `length` bytes of JSON body. */
async function startPost(server: TestServer, length: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const head = [
    "POST /api/v1/rooms/lobby/messages HTTP/1.1",
    `Host: 127.0.0.1:${server.port}`,
    `Authorization: Bearer ${KEY}`,
    "Content-Type: application/json",
    `Content-Length: ${length}`,
  ];
  await conn.write(new TextEncoder().encode(`${head.join("\r\n")}\r\n\r\n{"from":`));
  return conn;
}

/** Reads an HTTP answer's status and JSON body from a raw connection. */
async function readAnswer(conn: Deno.Conn): Promise<[number, unknown]> {
  let text = "";
  const chunk = new Uint8Array(4096);
  while (true) {
    const end = text.indexOf("\r\n\r\n");
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
    if (end >= 0 && text.length >= end + 4 + length) {
      return [Number(text.slice(9, 12)), JSON.parse(text.slice(end + 4, end + 4 + length))];
    }
    const read = await within(conn.read(chunk), "the answer");
    if (read === null) throw new Error(`The connection ended after ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(chunk.subarray(0, read));
  }
}

Deno.test("an API body has a deadline, and a client that goes away is no error", async (t) => {
  const records: LogRecord[] = [];
  let recorded: (() => void) | undefined;
  await configure({
    reset: true,
    sinks: {
      test: (record) => {
        records.push(record);
        recorded?.();
      },
    },
    loggers: [
      { category: ["chat"], lowestLevel: "debug", sinks: ["test"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["test"] },
    ],
  });
  /** The first record `match` accepts, logged already or from now on. */
  const logged = (match: (record: LogRecord) => boolean, what: string): Promise<LogRecord> =>
    within(
      (async () => {
        while (true) {
          const found = records.find(match);
          if (found !== undefined) return found;
          await new Promise<void>((resolve) => recorded = resolve);
        }
      })(),
      what,
    );
  const server = startTestServer({ apiKeys: [KEY], apiBodyTimeout: 300 });
  try {
    await t.step("a body that trickles past the deadline: 408", async () => {
      const conn = await startPost(server, 1000);
      let trickling = true;
      const trickle = (async () => {
        // One byte every 50 ms: never idle, never done.
        while (trickling) {
          await delay(50);
          await conn.write(new TextEncoder().encode(" ")).catch(() => trickling = false);
        }
      })();
      try {
        assertEquals(await readAnswer(conn), [
          408,
          error("request_timeout", "the body did not arrive within 0.3 s"),
        ]);
      } finally {
        trickling = false;
        await trickle;
        conn.close();
      }
    });

    await t.step("a client that goes away while sending: a debug line, no error", async () => {
      const conn = await startPost(server, 1000);
      conn.close();
      const record = await logged(
        (record) =>
          record.category.join(".") === "chat.api" && /went away/.test(String(record.rawMessage)),
        "the line saying so",
      );
      assertEquals([record.level, record.properties.path], [
        "debug",
        "/api/v1/rooms/lobby/messages",
      ]);
    });

    await t.step("nothing was logged as an error, or answered 500", () => {
      const serious = records.filter((record) =>
        record.level === "error" || record.level === "fatal" || record.level === "warning"
      );
      assertEquals(serious, []);
      assertEquals(server.metrics.errors.get(), 0);
      assertEquals(server.metrics.apiRequests.get("5xx"), 0);
    });
  } finally {
    await server.close();
    await reset();
  }
});
