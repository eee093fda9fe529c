/**
 * Attacks on the real server, one table per kind: frames that would skip
 * flood control, floods spread over reconnects, room and presence churn,
 * look-alike names, running out of file descriptors, foreign hosts, and
 * operator mistakes at start.
 */

import { delay } from "@std/async/delay";
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import type { ChatConfig } from "../../src/config/mod.ts";
import {
  FLOOD_OFF,
  floodUntilClosed,
  rawUpgrade,
  TestClient,
  type TestServer,
  type TestServerOptions,
  type V2Frame,
  within,
  withServer,
} from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { startServerProcess } from "./_process.ts";

/** Every limit out of the way; a test sets the one it tries. */
const RELAXED: Partial<ChatConfig> = {
  flood: FLOOD_OFF,
  presenceRate: 100_000,
  presenceBurst: 100_000,
  roomCreateRate: 100_000,
  roomCreateBurst: 100_000,
};

/** A server with every limit out of the way but those `options` set. */
function withRelaxedServer(
  options: TestServerOptions,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  return withServer({ ...options, chat: { ...RELAXED, ...options.chat } }, body);
}

const FLOOD_WARNING = "You are sending messages too fast: slow down, they are being dropped.";
const FLOOD_CLOSED = "Disconnected: you kept sending too fast.";

Deno.test("every frame draws from the flood bucket, and abuse ends in 1008", async (t) => {
  const flood = { ...RELAXED.flood!, rate: 0.01, burst: 10, disconnectAfter: 0.5 };
  const batch = JSON.stringify(Array.from({ length: 256 }, () => ({ type: "nope" })));
  const cases: {
    name: string;
    v2: boolean;
    /** What the client sends, again and again. */
    frame: string | Uint8Array;
    /** How many replies to expect from one frame before the warning, and what each says. */
    perFrame: number;
    reply: string;
  }[] = [
    {
      name: "v2: frames of 256 invalid requests",
      v2: true,
      frame: batch,
      perFrame: 256,
      reply: 'Bad request: unknown type "nope"',
    },
    {
      name: "v2: binary frames",
      v2: true,
      frame: new Uint8Array(8),
      perFrame: 1,
      reply: "Binary frames are not supported: send text.",
    },
    {
      name: "text: binary frames",
      v2: false,
      frame: new Uint8Array(8),
      perFrame: 1,
      reply: "Binary frames are not supported: send text.",
    },
    {
      name: "text: unknown commands",
      v2: false,
      frame: "!nope",
      perFrame: 1,
      reply: '"!nope" is not a valid command',
    },
  ];
  for (const { name, v2, frame, perFrame, reply } of cases) {
    await t.step(name, async () => {
      await withRelaxedServer({ chat: { flood } }, async (server) => {
        const client = v2 ? (await server.joinV2("Mallory")).client : (await server.join()).client;
        const text = (event: V2Frame | { body: string }): string =>
          "body" in event ? String(event.body) : String(event.text);
        // The burst is answered, then one warning, then nothing until the close.
        const frames = Math.ceil(11 / perFrame);
        for (let i = 0; i < frames; i++) client.socket.send(frame);
        for (let i = 0; i < 10; i++) assertEquals(text(await client.next()), reply);
        assertEquals(text(await client.next()), FLOOD_WARNING);
        const started = performance.now();
        while (client.socket.readyState === WebSocket.OPEN) {
          assert(performance.now() - started < 3000, "still open after 3 s of abuse");
          client.socket.send(frame);
          await delay(20);
        }
        assertEquals((await within(client.closed, "the close")).code, 1008);
        assertEquals(client.pending.map(text), [FLOOD_CLOSED]);
        assertEquals(server.metrics.connectionsClosed.get("flood"), 1);
      });
    });
  }

  await t.step("ten raw clients that keep sending 100 frames/s each read the 1008", async () => {
    await withRelaxedServer({ chat: { flood } }, async (server) => {
      const closes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => floodUntilClosed(server.port, `spam ${i}`, 10)),
      );
      assertEquals(closes, Array(10).fill({ code: 1008, reason: "flooding" }));
    });
  });
});

Deno.test("limits follow the client address across reconnects", async (t) => {
  await t.step("the flood bucket of an address survives a reconnect", async () => {
    const flood = {
      ...FLOOD_OFF,
      rate: 0.01,
      burst: 10,
      disconnectAfter: 60,
      addressRate: 0.01,
      addressBurst: 15,
    };
    await withRelaxedServer({ chat: { flood } }, async (server) => {
      const bob = await server.join("?name=Bob");
      for (const round of ["a", "b"]) {
        const mallory = await server.join("?name=Mallory");
        assertEquals(await bob.client.nextPair(), ["SERVER", "Mallory has connected!"]);
        for (let i = 0; i < 10; i++) mallory.client.send(`${round}${i}`);
        const accepted = round === "a" ? 10 : 5;
        for (let i = 0; i < accepted; i++) {
          assertEquals(await bob.client.nextPair(), ["USER", `Mallory: ${round}${i}`]);
        }
        if (round === "b") {
          await mallory.client.waitFor((frame) => frame.body === FLOOD_WARNING, "the warning");
        }
        await mallory.client.close();
        assertEquals(await bob.client.nextPair(), ["SERVER", "Mallory has disconnected!"]);
      }
      assertEquals(server.metrics.messagesDropped.get("flood"), 5);
    });
  });

  await t.step("new connections beyond connect_rate are answered 429", async () => {
    await withRelaxedServer({ limits: { connectRate: 0.01, connectBurst: 3 } }, async (server) => {
      for (let i = 0; i < 3; i++) {
        const { status, conn } = await rawUpgrade(server.port);
        conn.close();
        assertEquals(status, 101);
      }
      const refused = await rawUpgrade(server.port);
      let answer = new TextDecoder().decode(refused.after);
      const chunk = new Uint8Array(1024);
      while (!answer.includes("\n")) {
        const read = await within(refused.conn.read(chunk), "the answer's body");
        if (read === null) break;
        answer += new TextDecoder().decode(chunk.subarray(0, read));
      }
      refused.conn.close();
      assertEquals(refused.status, 429);
      assertEquals(answer, "Too many new connections from your address: wait a moment\n");
      assertEquals(server.metrics.connectionsRefused.get("connect_rate"), 1);
      // Pages and probes are not new sockets: they are still served.
      assertEquals((await fetch(`${server.httpUrl}/healthz`)).status, 200);
    });
  });

  await t.step("a room shows at most presence_burst join and leave notices", async () => {
    await withRelaxedServer({ chat: { presenceRate: 0.01, presenceBurst: 5 } }, async (server) => {
      const bob = await server.join("?name=Bob");
      for (let i = 0; i < 5; i++) {
        const { client } = await server.join(`?name=Churn${i}`);
        await client.close();
      }
      const shown: string[] = [];
      for (let i = 0; i < 4; i++) shown.push((await bob.client.next()).body);
      assertEquals(shown, [
        "Churn0 has connected!",
        "Churn0 has disconnected!",
        "Churn1 has connected!",
        "Churn1 has disconnected!",
      ]);
      // Bob's own request comes back after anything the churn could still have caused.
      bob.client.send("!ping");
      assertEquals(await bob.client.nextPair(), ["SERVER", "pong!"]);
      assertEquals(server.metrics.presenceSuppressed.get(), 6, "Bob's arrival took one notice");
    });
  });
});

Deno.test("rooms cannot be created fast enough to lock others out", async (t) => {
  const TOO_FAST = "You are creating rooms too fast: join an existing one, or wait a moment.";

  await t.step("room_create_burst holds per user and per address", async () => {
    await withRelaxedServer(
      { chat: { roomCreateRate: 0.01, roomCreateBurst: 3 } },
      async (server) => {
        const alice = await server.join("?name=Alice");
        for (const room of ["r1", "r2", "r3"]) {
          alice.client.send(`!join ${room}`);
          await alice.client.waitFor((frame) => frame.body.startsWith(`You are now in ${room}`));
        }
        alice.client.send("!join r4");
        assertEquals(await alice.client.nextPair(), ["SERVER", TOO_FAST]);
        // Another connection from the same address has no more rooms to create...
        const bob = await server.join("?name=Bob");
        bob.client.send("!join r5");
        assertEquals(await bob.client.nextPair(), ["SERVER", TOO_FAST]);
        // ...but joins existing ones.
        bob.client.send("!join r3");
        assertEquals(await bob.client.nextPair(), ["SERVER", "You are now in r3 with: Alice, Bob"]);
      },
    );
  });

  await t.step("at max_rooms, the room nobody spoke in makes way for a new one", async () => {
    // Rooms are spared for unused_room_ttl once empty (someone may be on the way in).
    const chat = { maxRooms: 3, unusedRoomTtl: 0.2 };
    await withRelaxedServer({ chat }, async (server) => {
      const alice = await server.join("?name=Alice");
      for (const room of ["empty", "spoken"]) {
        alice.client.send(`!join ${room}`);
        await alice.client.waitFor((frame) => frame.body.startsWith(`You are now in ${room}`));
      }
      alice.client.send("hello");
      await alice.client.waitFor((frame) => frame.body === "Alice: hello");
      alice.client.send("!leave");
      await alice.client.waitFor((frame) => frame.body.startsWith("You are now in lobby"));
      const carol = await server.join("?name=Carol");
      const deadline = Date.now() + 5000;
      carol.client.send("!join fresh");
      let answer = await carol.client.nextPair();
      while (answer[1].startsWith("No more rooms") && Date.now() < deadline) {
        await delay(50);
        carol.client.send("!join fresh");
        answer = await carol.client.nextPair();
      }
      assertEquals(answer, ["SERVER", "You are now in fresh with: Carol"]);
      carol.client.send("!rooms");
      assertEquals(await carol.client.nextPair(), [
        "SERVER",
        "Rooms: lobby (1), spoken (0), fresh (1)",
      ]);
    });
  });
});

Deno.test("invisible and look-alike names and rooms are refused or collide", async (t) => {
  await withRelaxedServer({}, async (server) => {
    await server.join("?name=Alice");
    await server.join("?name=scope");
    await server.join("?name=Tom");
    const bob = await server.join("?name=Bob");
    const names: [string, string][] = [
      ["Alice\uFE0F", "it holds invisible characters"],
      ["Alice\u034F", "it holds invisible characters"],
      ["Alice\u{E0100}", "it holds invisible characters"],
      ["Alice\u3164", "it holds invisible characters"],
      ["\uFFA0", "it holds invisible characters"],
      ["\u0410lice", "it mixes writing systems"],
      ["\u0455\u0441\u043E\u0440\u0435", "it is taken"], // all Cyrillic
      ["ADM\u0130N", "it is reserved"],
      ["A1ice", "it is taken"],
      ["AIice", "it is taken"], // a capital I for the small l
      ["\u0410\u0406\u0456\u0441\u0435", "it is taken"], // all Cyrillic
      ["\uA4EE\u2C80", "it mixes writing systems"], // Lisu with Coptic
      ["\u0301Alice", "it starts with a combining mark"],
      [
        "Bo\u0316\u0317\u0318\u0319\u031C\u031D\u031Eb",
        "it stacks more than 6 marks on one character",
      ],
      ["\u03A4\u039F\u039C", "it is taken"], // Greek capitals
      ["\u0422\u041E\u041C", "it is taken"], // Cyrillic capitals
      ["\uA4D4\uA4F3\uA4DF", "it is taken"], // Lisu
      ["T0M", "it is taken"],
      ["ALlCE", "it is taken"], // a small l for the capital I of ALICE
    ];
    for (const [name, reason] of names) {
      await t.step(`!setname ${JSON.stringify(name)}: ${reason}`, async () => {
        bob.client.send(`!setname ${name}`);
        assertEquals(await bob.client.nextPair(), [
          "SERVER",
          `Cannot change your name to "${name}": ${reason}`,
        ]);
      });
    }
    const rooms: [string, string][] = [
      ["l\u043Ebby", "You are already in lobby"],
      ["Iobby", "You are already in lobby"],
      [
        "lobby\u0660",
        '"lobby\u0660" is not a valid room name: use 1 to 32 letters, digits, "-" and "_"',
      ],
      // Invisible characters are taken out of all text, so this is the lobby.
      ["lob\u200Dby", "You are already in lobby"],
      ["LOBBY", "You are already in lobby"],
      ["team", "You are now in team with: Bob"],
      ["\u0422\u0415\u0410\u041C", "You are already in team"], // Cyrillic capitals
      ["\u03A4\u0395\u0391\u039C", "You are already in team"], // Greek capitals
      ["\u13A2\u13AC\u13AA\u13B7", "You are already in team"], // Cherokee
      ["alice", "You are now in alice with: Bob"],
      ["AIice", "You are already in alice"], // a capital I for the small l
    ];
    for (const [room, answer] of rooms) {
      await t.step(`!join ${JSON.stringify(room)}`, async () => {
        bob.client.send(`!join ${room}`);
        assertEquals(await bob.client.nextPair(), ["SERVER", answer]);
      });
    }
    await t.step("a new spelling of one's own name may not look like someone else's", async () => {
      const malice = await server.join("?name=malice");
      await server.join("?name=mALlCE"); // a small l for the capital I: apart from malice
      await malice.client.waitFor((frame) => frame.body === "mALlCE has connected!");
      malice.client.send("!setname mALICE"); // one's own name in capitals, but like mALlCE
      assertEquals(await malice.client.nextPair(), [
        "SERVER",
        'Cannot change your name to "mALICE": it is taken',
      ]);
    });

    await t.step("a refused ?name= says why", async () => {
      const mallory = await TestClient.connect(
        `${server.url}?name=${encodeURIComponent("Al\u0456ce")}`,
      );
      const welcome = await mallory.next();
      const given = /^Welcome, (\S+) /.exec(welcome.body)?.[1];
      assertEquals(await mallory.nextPair(), [
        "SERVER",
        `Cannot use the name "Al\u0456ce": it mixes writing systems. You are ${given}.`,
      ]);
      await mallory.close();
    });
  });
});

Deno.test("more a hostile client tried", async (t) => {
  await t.step("one flood warning per user, whichever bucket runs dry", async () => {
    const flood = {
      ...FLOOD_OFF,
      rate: 0.01,
      burst: 3,
      disconnectAfter: 60,
      addressRate: 0.01,
      addressBurst: 3,
    };
    await withRelaxedServer({ chat: { flood } }, async (server) => {
      const { client } = await server.join();
      for (let i = 0; i < 8; i++) client.send(`m${i}`);
      client.send("!ping");
      for (let i = 0; i < 3; i++) await client.next();
      assertEquals((await client.next()).body, FLOOD_WARNING);
      const other = (await server.join()).client;
      other.send("from the same address");
      assertEquals(
        (await other.waitFor((frame) => frame.body === FLOOD_WARNING, "its own warning")).body,
        FLOOD_WARNING,
      );
      assertEquals(client.pending.filter((frame) => frame.body === FLOOD_WARNING), []);
    });
  });

  await t.step("a room refused at the start is said, not just left out", async () => {
    await withRelaxedServer({}, async (server) => {
      const client = await TestClient.connect(
        `${server.url}?room=${encodeURIComponent("no good!")}`,
      );
      await client.next();
      assertEquals(await client.nextPair(), [
        "SERVER",
        '"no good!" is not a valid room name: use 1 to 32 letters, digits, "-" and "_"',
      ]);
      await client.close();
    });
  });

  await t.step("renames are few: each is told to the room", async () => {
    await withRelaxedServer({}, async (server) => {
      const { client } = await server.join("?name=Ren");
      for (const name of ["Ren1", "Ren2", "Ren3"]) {
        client.send(`!setname ${name}`);
        await client.waitFor((frame) => frame.body.endsWith(`"${name}"`));
      }
      client.send("!setname Ren4");
      assertEquals(await client.nextPair(), [
        "SERVER",
        'Cannot change your name to "Ren4": you are renaming too often; wait a minute',
      ]);
    });
  });

  await t.step("sockets the ping timeout closes give their place back once", async () => {
    await withRelaxedServer(
      { limits: { idleTimeout: 1, maxConnectionsPerIp: 5 } },
      async (server) => {
        const health = async () =>
          (await (await fetch(`${server.httpUrl}/healthz`)).json()).connections;
        const { client } = await server.join();
        const silent = await Promise.all([1, 2].map(() => rawUpgrade(server.port)));
        assertEquals(await health(), 3);
        // They never answer a ping: within two idle timeouts they are closed.
        await within(
          (async () => {
            while (await health() !== 1) await delay(100);
          })(),
          "the silent sockets to be closed",
        );
        await delay(1500);
        assertEquals(await health(), 1);
        for (const { conn } of silent) conn.close();
        await client.close();
      },
    );
  });

  await t.step("a Host header that is no host is a 400, not a crash", async () => {
    await withRelaxedServer({}, async (server) => {
      for (const host of ["[::1]evil.com", "::1", "chat.example.com, evil.com"]) {
        const answer = await rawUpgrade(server.port, { path: "/healthz", headers: { Host: host } });
        answer.conn.close();
        assertEquals(answer.status, 400, host);
      }
      assertEquals((await fetch(`${server.httpUrl}/healthz`)).status, 200);
    });
  });

  await t.step("behind a trusted proxy, limits and bans see the client's address", async () => {
    await withRelaxedServer({ limits: { trustedProxies: ["127.0.0.1"] } }, async (server) => {
      const banned = server.chatroom.perform({
        type: "ban",
        target: "addr:203.0.113.9",
        seconds: 60,
        reason: "spam",
      });
      assertEquals(await banned, { ok: true, done: "203.0.113.9 is banned for 1 minute" });
      const status = async (forwarded: string) => {
        const answer = await rawUpgrade(server.port, { headers: { "X-Forwarded-For": forwarded } });
        answer.conn.close();
        return answer.status;
      };
      assertEquals(await status("203.0.113.9"), 403);
      assertEquals(await status("10.0.0.1, 203.0.113.9"), 403);
      assertEquals(await status("203.0.113.10"), 101);
    });
  });
});

Deno.test("small things a user sees", async (t) => {
  await withRelaxedServer({}, async (server) => {
    const alice = await server.join("?name=Alice");
    alice.client.send("first");
    await alice.client.next();

    await t.step("!history 0 is a usage error, not an empty history", async () => {
      alice.client.send("!history 0");
      assertEquals(await alice.client.nextPair(), ["SERVER", "Usage: !history [n]"]);
    });

    await t.step("v2 history with count 0 is a bad request", async () => {
      const { client } = await server.joinV2("Vera");
      await alice.client.next();
      client.send(JSON.stringify({ type: "history", count: 0 }));
      const event = await client.waitFor((frame) => frame.type === "error");
      assertEquals([event.code, event.text], [
        "bad_request",
        'Bad request: "history" needs "count": a whole number of at least 1',
      ]);
    });

    await t.step("!setname to your own name changes nothing and tells nobody", async () => {
      const bob = await server.join("?name=Bob");
      await alice.client.next();
      bob.client.send("!setname Bob");
      const answer = await bob.client.waitFor((frame) => frame.origin === "SERVER");
      assertEquals(answer.body, 'Cannot change your name to "Bob": it is already yours');
      bob.client.send("!ping");
      await bob.client.next();
      assertEquals(alice.client.pending, []);
    });
  });
});

Deno.test("hosts the server does not answer for are refused", async (t) => {
  const configDir = await testConfigDir({ limits: { allowed_hosts: '["chat.example.com"]' } });
  const server = await startServerProcess({ env: { CHAT_CONFIG_DIR: configDir } });
  const port = Number(new URL(server.httpUrl).port);
  try {
    const cases: [string, Record<string, string>, number][] = [
      ["a rebound name with a matching Origin", {
        Host: "evil.net",
        Origin: "https://evil.net",
      }, 421],
      ["a rebound name without Origin", { Host: "evil.net:80" }, 421],
      ["the listed name", { Host: "chat.example.com", Origin: "https://chat.example.com" }, 101],
      ["loopback, for local clients and probes", {}, 101],
    ];
    for (const [name, headers, status] of cases) {
      await t.step(`${name}: ${status}`, async () => {
        const answer = await rawUpgrade(port, { headers });
        answer.conn.close();
        assertEquals(answer.status, status);
      });
    }
    await t.step("a refused page request too, and the log names host and origin", async () => {
      const answer = await rawUpgrade(port, { path: "/", headers: { Host: "evil.net" } });
      answer.conn.close();
      assertEquals(answer.status, 421);
      await within(
        (async () => {
          while (
            !server.output.some((line) => line.includes("host evil.net, origin https://evil.net"))
          ) {
            await delay(20);
          }
        })(),
        "the refusal in the log",
      );
      const line = server.output.find((line) => line.includes("origin https://evil.net"))!;
      assertMatch(
        line,
        /Refused GET \/ws from 127\.0\.0\.1: This server does not answer for evil\.net \(host evil\.net, origin https:\/\/evil\.net\)$/,
      );
    });
  } finally {
    await server.kill();
    await Deno.remove(configDir, { recursive: true });
  }
});

Deno.test("out of file descriptors, the server survives and recovers", async (t) => {
  const LIMIT = 160;
  const cases: [string, boolean][] = [
    ["with the permissions of deno task start", false],
    ["with --allow-all, which lets it count its descriptors", true],
  ];
  for (const [name, allowAll] of cases) {
    await t.step(name, async () => {
      const configDir = await testConfigDir({ floodOff: true });
      const server = await startServerProcess({
        env: { CHAT_CONFIG_DIR: configDir },
        maxOpenFiles: LIMIT,
        allowAll,
      });
      const port = Number(new URL(server.httpUrl).port);
      const hogs: Deno.TcpConn[] = [];
      try {
        const health = await (await fetch(`${server.httpUrl}/healthz`)).json();
        if (allowAll) {
          assertEquals(health.descriptors.limit, LIMIT);
          assert(health.descriptors.open > 0 && health.descriptors.open < LIMIT);
        } else {
          assertEquals(health.descriptors, undefined);
        }
        const alice = await TestClient.connect(`ws://127.0.0.1:${port}/ws?name=Alice`);
        await alice.next();
        // Connections that start a request and never finish it hold a descriptor each.
        // Once the server cannot accept, it stops listening for a moment: connecting is refused.
        for (let i = 0; i < LIMIT + 40; i++) {
          try {
            const conn = await Deno.connect({ hostname: "127.0.0.1", port });
            hogs.push(conn);
            await conn.write(new TextEncoder().encode("G"));
          } catch (error) {
            assert(
              error instanceof Deno.errors.ConnectionRefused ||
                error instanceof Deno.errors.ConnectionReset,
              String(error),
            );
            break;
          }
        }
        await within(
          (async () => {
            while (!server.output.some((line) => line.includes("Cannot accept connections"))) {
              await delay(20);
            }
          })(),
          "the accept failure in the log",
        );
        // The socket already open goes on working meanwhile.
        alice.send("still here");
        assertEquals(await alice.nextPair(), ["SELF", "Alice: still here"]);
        for (const conn of hogs.splice(0)) conn.close();
        // Once they are gone, new clients are served again.
        const bob = await within(
          (async () => {
            while (true) {
              try {
                return await TestClient.connect(`ws://127.0.0.1:${port}/ws?name=Bob`);
              } catch {
                await delay(100);
              }
            }
          })(),
          "the server to accept again",
          10_000,
        ).catch((e) => {
          console.log(server.output.join("\n"));
          throw e;
        });
        await bob.next();
        assertEquals(await alice.nextPair(), ["SERVER", "Bob has connected!"]);
        const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
        assertMatch(metrics, /^chat_accept_failures_total [1-9]\d*$/m);
        if (allowAll) assertMatch(metrics, new RegExp(`^process_max_fds ${LIMIT}$`, "m"));
        await bob.close();
        await alice.close();
      } finally {
        for (const conn of hogs) conn.close();
        await server.kill();
        await Deno.remove(configDir, { recursive: true });
      }
    });
  }
});

Deno.test("operator mistakes at start: one line, the cause and the fix", async (t) => {
  /** Runs the entry point with `args` and `env`, giving up after 10 s. */
  async function start(args: string[], env: Record<string, string> = {}) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", "--unstable-kv", "src/main.ts", ...args],
      cwd: new URL("../../", import.meta.url),
      env: { NO_COLOR: "1", CHAT_ENV: "test", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const lines = (new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr))
      .split("\n").filter((line) => line !== "");
    return { code, lines };
  }

  await t.step("a port in use: exit 1", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { code, lines } = await start(["--port", String(taken.addr.port)]);
      assertEquals(code, 1);
      assertEquals(lines.length, 1, lines.join("\n"));
      assertMatch(
        lines[0],
        new RegExp(
          `^Cannot start server as port ${taken.addr.port} on 127\\.0\\.0\\.1 is in use: stop what uses it, or choose another port with "host" and "port" in .*server\\.yaml \\(or --host, --port\\)$`,
        ),
      );
    } finally {
      taken.close();
    }
  });

  await t.step("an address of another machine: exit 2", async () => {
    // A documentation address (TEST-NET-1): binding to it fails at once, nothing is sent.
    const { code, lines } = await start(["--host", "192.0.2.1", "--port", "0"]);
    assertEquals(code, 2);
    assertEquals(lines.length, 1, lines.join("\n"));
    assertMatch(
      lines[0],
      /^Cannot start server as 192\.0\.2\.1 is not an address of this machine: /,
    );
  });

  const configs: [string, (file: string) => Promise<void>][] = [
    ["a directory", (file) => Deno.mkdir(file)],
    ["a named pipe", async (file) => {
      const { success } = await new Deno.Command("mkfifo", { args: [file] }).output();
      assert(success, "mkfifo failed");
    }],
  ];
  for (const [what, make] of configs) {
    await t.step(`a config file that is ${what}: exit 2`, async () => {
      const configDir = await Deno.makeTempDir({ prefix: "chat-config-" });
      try {
        await Deno.mkdir(join(configDir, "test"));
        const file = join(configDir, "test", "server.yaml");
        await make(file);
        const { code, lines } = await start([], { CHAT_CONFIG_DIR: configDir });
        assertEquals(code, 2);
        assertEquals(lines, [
          `Cannot start server as config file ${file} is not a regular file: point --env or CHAT_CONFIG_DIR at a folder of YAML files`,
        ]);
      } finally {
        await Deno.remove(configDir, { recursive: true });
      }
    });
  }
});
