/** Each hardening rule, tried against the real server the way a hostile client would. */

import { delay } from "@std/async/delay";
import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import {
  FLOOD_OFF,
  rawUpgrade,
  TestClient,
  type TestServer,
  type TestServerOptions,
  within,
  withServer,
} from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { startServerProcess } from "./_process.ts";

/** Runs `body` against a fresh server, flood control out of the way unless `options` set it. */
function withRelaxedServer(
  options: TestServerOptions,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  return withServer({ ...options, chat: { flood: FLOOD_OFF, ...options.chat } }, body);
}

/** Polls `read` until it returns `expected`, failing after the usual timeout. */
async function eventually<T>(read: () => Promise<T>, expected: T, what: string): Promise<void> {
  await within(
    (async () => {
      while (JSON.stringify(await read()) !== JSON.stringify(expected)) {
        await delay(20);
      }
    })(),
    what,
  );
}

/** Alice and Bob, connected, with Bob's arrival already read by Alice. */
async function aliceAndBob(server: TestServer) {
  const alice = await server.join("?name=Alice");
  const bob = await server.join("?name=Bob");
  assertEquals(await alice.client.nextPair(), ["SERVER", "Bob has connected!"]);
  return { alice, bob };
}

async function health(server: TestServer): Promise<number> {
  const response = await fetch(`${server.httpUrl}/healthz`);
  return (await response.json()).connections;
}

const ONLY = 'it may only contain letters, digits, "_", "-" and "."';

Deno.test("names are unique, valid and not reserved", async (t) => {
  await withRelaxedServer({}, async (server) => {
    const { alice, bob } = await aliceAndBob(server);

    const refusals: [string, string][] = [
      ["alice", "it is taken"],
      ["ＡＬＩＣＥ", "it is taken"],
      ["ALICE", "it is taken"],
      ["Ali\u200bce", "it is taken"],
      ["admin", "it is reserved"],
      ["Server", "it is reserved"],
      ["moderator", "it is reserved"],
      ["bob!", ONLY],
      ["<script>", ONLY],
      ["x".repeat(33), "it is longer than 32 characters"],
    ];
    for (const [name, reason] of refusals) {
      await t.step(`!setname ${JSON.stringify(name)} is refused: ${reason}`, async () => {
        bob.client.send(`!setname ${name}`);
        const shown = name.replace("\u200b", "");
        assertEquals(await bob.client.nextPair(), [
          "SERVER",
          `Cannot change your name to "${shown}": ${reason}`,
        ]);
      });
    }

    await t.step("a refused rename changes nothing and tells nobody", async () => {
      bob.client.send("!who");
      assertEquals(await bob.client.nextPair(), ["SERVER", "Connected Users: Alice, Bob"]);
      assertEquals(alice.client.pending, []);
    });

    for (const name of ["alice", "ＡＬＩＣＥ", "root", "two words", "x".repeat(33), "a\u200bb"]) {
      await t.step(`?name=${JSON.stringify(name)} falls back to a generated name`, async () => {
        const other = await server.join(`?name=${encodeURIComponent(name)}`);
        assertNotEquals(other.name, name);
        assertMatch(other.name, /^[A-Z][a-z]+[A-Z][a-z]+\d*$/);
        await other.client.close();
      });
    }
  });
});

Deno.test("chat text is cleaned and empty messages are dropped", async (t) => {
  await withRelaxedServer({}, async (server) => {
    const { alice, bob } = await aliceAndBob(server);

    const cleaned: [string, string][] = [
      ["null\u0000byte", "nullbyte"],
      ["tab\tstays", "tab\tstays"],
      ["line\nbreak\r\n", "linebreak"],
      ["\u202eright-to-left override", "right-to-left override"],
      ["zero\u200bwidth\ufeff", "zerowidth"],
      ["bell\u0007 and escape\u001b[31m", "bell and escape[31m"],
      [
        "Z\u0316\u0317\u0318\u0319\u031A\u031B\u031C\u031D\u031Ealgo",
        "Z\u0316\u0317\u0318\u0319\u031A\u031Balgo",
      ],
      ["\u0F40\u0F92\u0FB2\u0FB1\u0F71\u0F72", "\u0F40\u0F92\u0FB2\u0FB1\u0F71\u0F72"], // Tibetan: five marks
    ];
    for (const [input, text] of cleaned) {
      await t.step(`${JSON.stringify(input)} arrives as ${JSON.stringify(text)}`, async () => {
        alice.client.send(input);
        assertEquals(await bob.client.nextPair(), ["USER", `Alice: ${text}`]);
        assertEquals(await alice.client.nextPair(), ["SELF", `Alice: ${text}`]);
      });
    }

    for (const input of ["", "   ", "\n\t \r\n", "\u200b\u200e"]) {
      await t.step(`${JSON.stringify(input)} is dropped without a broadcast`, async () => {
        alice.client.send(input);
        alice.client.send("marker");
        assertEquals(await bob.client.nextPair(), ["USER", "Alice: marker"]);
        assertEquals(await alice.client.nextPair(), ["SELF", "Alice: marker"]);
      });
    }
  });
});

Deno.test("frames: binary is refused, oversized frames close with 1009", async (t) => {
  await withRelaxedServer(
    { chat: { maxMessageLen: 100 }, limits: { maxFrameBytes: 2048 } },
    async (server) => {
      const { alice, bob } = await aliceAndBob(server);

      await t.step("a binary frame gets an error reply and nothing else", async () => {
        alice.client.socket.send(new Uint8Array([1, 2, 3]));
        assertEquals(await alice.client.nextPair(), [
          "SERVER",
          "Binary frames are not supported: send text.",
        ]);
        alice.client.send("marker");
        assertEquals(await bob.client.nextPair(), ["USER", "Alice: marker"]);
        await alice.client.next();
      });

      await t.step("text between max_message_len and max_frame_bytes is cut", async () => {
        alice.client.send("y".repeat(2000));
        assertEquals(await bob.client.nextPair(), ["USER", `Alice: ${"y".repeat(100)}`]);
        await alice.client.next();
      });

      await t.step("a frame over max_frame_bytes closes the socket with 1009", async () => {
        alice.client.send("é".repeat(1025));
        assertEquals((await within(alice.client.closed, "the close")).code, 1009);
        assertEquals(await bob.client.nextPair(), ["SERVER", "Alice has disconnected!"]);
        assertEquals(server.metrics.connectionsClosed.get("frame_too_large"), 1);
      });

      await t.step("so does a binary frame over the limit", async () => {
        const carol = await server.join("?name=Carol");
        await bob.client.waitFor((frame) => frame.body === "Carol has connected!");
        carol.client.socket.send(new Uint8Array(4096));
        assertEquals((await within(carol.client.closed, "the close")).code, 1009);
        assertEquals(await bob.client.nextPair(), ["SERVER", "Carol has disconnected!"]);
      });
    },
  );
});

Deno.test("a socket sending more than max_inbound_bytes_per_s is closed with 1008", async () => {
  const limits = { maxFrameBytes: 8192, maxInboundBytesPerSecond: 1024 };
  await withRelaxedServer({ chat: { maxMessageLen: 10 }, limits }, async (server) => {
    const { alice, bob } = await aliceAndBob(server);
    // Four frames of max_frame_bytes go at once; the bucket refills at 1 KiB/s.
    for (let i = 0; i < 4; i++) {
      alice.client.send(`${i}`.repeat(8000));
      assertEquals(await bob.client.nextPair(), ["USER", `Alice: ${`${i}`.repeat(10)}`]);
    }
    // One more is too much. (A client that went on sending might not read the close:
    // the runtime drops the connection at the first frame that follows its close.)
    alice.client.send("z".repeat(8000));
    const closed = await within(alice.client.closed, "the close");
    assertEquals([closed.code, closed.reason], [1008, "inbound rate"]);
    await bob.client.waitFor((frame) => frame.body === "Alice has disconnected!");
    assertEquals(server.metrics.connectionsClosed.get("inbound_rate"), 1);
  });
});

Deno.test("flood control", async (t) => {
  await t.step("over the limit: one warning, the rest dropped, others see no flood", async () => {
    await withRelaxedServer(
      {
        chat: {
          flood: { ...FLOOD_OFF, rate: 0.01, burst: 3, disconnectAfter: 60 },
        },
      },
      async (server) => {
        const { alice, bob } = await aliceAndBob(server);
        for (let i = 0; i < 8; i++) alice.client.send(`m${i}`);
        alice.client.send("!ping");
        for (let i = 0; i < 3; i++) {
          assertEquals(await alice.client.nextPair(), ["SELF", `Alice: m${i}`]);
          assertEquals(await bob.client.nextPair(), ["USER", `Alice: m${i}`]);
        }
        assertEquals(await alice.client.nextPair(), [
          "SERVER",
          "You are sending messages too fast: slow down, they are being dropped.",
        ]);
        bob.client.send("marker");
        assertEquals(await bob.client.nextPair(), ["SELF", "Bob: marker"]);
        assertEquals(await alice.client.nextPair(), ["USER", "Bob: marker"]);
        assertEquals(server.metrics.messagesDropped.get("flood"), 6);
      },
    );
  });

  await t.step("a client that keeps flooding is closed with 1008", async () => {
    await withRelaxedServer(
      {
        chat: {
          flood: { ...FLOOD_OFF, rate: 1, burst: 1, disconnectAfter: 0.3 },
        },
      },
      async (server) => {
        const { alice, bob } = await aliceAndBob(server);
        const started = performance.now();
        while (alice.client.socket.readyState === WebSocket.OPEN) {
          assert(performance.now() - started < 3000, "still open after 3 s of flooding");
          alice.client.send("spam");
          await delay(10);
        }
        assertEquals((await within(alice.client.closed, "the close")).code, 1008);
        await bob.client.waitFor((frame) => frame.body === "Alice has disconnected!");
        assertEquals(server.metrics.connectionsClosed.get("flood"), 1);
      },
    );
  });
});

Deno.test("connection limits and origins", async (t) => {
  await t.step("past max_connections an upgrade is answered 503", async () => {
    await withRelaxedServer({ limits: { maxConnections: 2 } }, async (server) => {
      const first = await server.join();
      await server.join();
      const refused = await rawUpgrade(server.port);
      refused.conn.close();
      assertEquals(refused.status, 503);
      assertEquals(server.metrics.connectionsRefused.get("max_connections"), 1);
      await first.client.close();
      await eventually(() => health(server), 1, "the closed socket's place to be given back");
      const admitted = await rawUpgrade(server.port);
      admitted.conn.close();
      assertEquals(admitted.status, 101);
    });
  });

  await t.step("past max_connections_per_ip an upgrade is answered 429", async () => {
    await withRelaxedServer({ limits: { maxConnectionsPerIp: 2 } }, async (server) => {
      await server.join();
      await server.join();
      const refused = await rawUpgrade(server.port);
      refused.conn.close();
      assertEquals(refused.status, 429);
      assertEquals(server.metrics.connectionsRefused.get("max_connections_per_ip"), 1);
    });
  });

  await t.step("allowed_origins", async () => {
    await withRelaxedServer(
      { limits: { allowedOrigins: ["https://good.example"] } },
      async (server) => {
        const cases: [Record<string, string>, number][] = [
          [{ Origin: "https://evil.example" }, 403],
          [{ Origin: "null" }, 403],
          [{ Origin: "https://good.example" }, 101],
          [{ Origin: `http://127.0.0.1:${server.port}` }, 101],
          [{}, 101],
        ];
        for (const [headers, status] of cases) {
          const answer = await rawUpgrade(server.port, { headers });
          answer.conn.close();
          assertEquals(answer.status, status, JSON.stringify(headers));
        }
        assertEquals(server.metrics.connectionsRefused.get("origin"), 2);
      },
    );
  });
});

Deno.test("a socket that stops answering pings is closed and its user leaves", async () => {
  await withRelaxedServer({ limits: { idleTimeout: 1 } }, async (server) => {
    const bob = await server.join("?name=Bob");
    const sleepy = await rawUpgrade(server.port, { path: "/ws?name=Sleepy" });
    try {
      assertEquals(sleepy.status, 101);
      await bob.client.waitFor((frame) => frame.body === "Sleepy has connected!");
      await bob.client.waitFor((frame) => frame.body === "Sleepy has disconnected!");
      bob.client.send("!who");
      assertEquals(await bob.client.nextPair(), ["SERVER", "Connected Users: Bob"]);
    } finally {
      sleepy.conn.close();
    }
  });
});

Deno.test("a slow consumer is closed with 1013 without slowing the others", async () => {
  const limits = { maxBufferedBytes: 256 * 1024, maxInboundBytesPerSecond: 64 * 1024 * 1024 };
  await withRelaxedServer({ limits }, async (server) => {
    const alice = await server.join("?name=Alice");
    const bob = await server.join("?name=Bob");
    const stalled = await rawUpgrade(server.port, { path: "/ws?name=Stalled" });
    try {
      await bob.client.waitFor((frame) => frame.body === "Stalled has connected!");
      // Alice sends in rounds that Bob keeps up with, so only the stalled
      // socket's backlog grows, well past what the kernel buffers absorb.
      const rounds = 300;
      const perRound = 20;
      const filler = "z".repeat(900);
      let stalledLeft = false;
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < perRound; i++) alice.client.send(`${round}.${i} ${filler}`);
        for (let i = 0; i < perRound; i++) {
          const frame = await bob.client.waitFor((frame) => {
            if (frame.body !== "Stalled has disconnected!") return true;
            stalledLeft = true;
            return false;
          });
          assertEquals(frame.body, `Alice: ${round}.${i} ${filler}`);
        }
      }
      assert(stalledLeft, "the stalled client was not cut off");
      assertEquals(server.metrics.connectionsClosed.get("slow_consumer"), 1);
    } finally {
      stalled.conn.close();
    }
  });
});

Deno.test("presence notices stop above presence_notice_max_members", async () => {
  await withRelaxedServer({ chat: { presenceNoticeMaxMembers: 2 } }, async (server) => {
    const alice = await server.join("?name=Alice");
    const bob = await server.join("?name=Bob");
    assertEquals(await alice.client.nextPair(), ["SERVER", "Bob has connected!"]);
    const carol = await server.join("?name=Carol");
    await carol.client.close();
    bob.client.send("marker");
    assertEquals(await alice.client.nextPair(), ["USER", "Bob: marker"]);
    await bob.client.close();
    assertEquals(await alice.client.nextPair(), ["SERVER", "Bob has disconnected!"]);
  });
});

Deno.test("/metrics reports traffic in the Prometheus text format", async () => {
  await withRelaxedServer(
    { limits: { allowedOrigins: ["https://good.example"] } },
    async (server) => {
      const { alice, bob } = await aliceAndBob(server);
      alice.client.send("hello");
      await bob.client.next();
      await alice.client.next();
      const refused = await rawUpgrade(server.port, {
        headers: { Origin: "https://evil.example" },
      });
      refused.conn.close();

      const response = await fetch(`${server.httpUrl}/metrics`);
      assertEquals(
        response.headers.get("content-type"),
        "text/plain; version=0.0.4; charset=utf-8",
      );
      const lines = (await response.text()).split("\n");
      for (
        const line of [
          "# TYPE chat_connections_open gauge",
          "chat_connections_open 2",
          "# TYPE chat_connections_accepted_total counter",
          "chat_connections_accepted_total 2",
          'chat_connections_refused_total{reason="origin"} 1',
          'chat_connections_refused_total{reason="max_connections"} 0',
          "chat_messages_received_total 1",
          // Two welcomes, one join notice, the message and its echo.
          "chat_messages_delivered_total 5",
          'chat_messages_dropped_total{reason="flood"} 0',
          'chat_connections_closed_by_server_total{reason="slow_consumer"} 0',
          "chat_errors_total 0",
        ]
      ) {
        assert(lines.includes(line), `missing ${line}`);
      }
      assert(lines.some((line) => /^process_resident_memory_bytes \d+$/.test(line)));
      assert(lines.some((line) => /^process_heap_used_bytes \d+$/.test(line)));
    },
  );
});

Deno.test("a ping flood, answered by the runtime, does not slow the chat", async () => {
  // Deno answers pings itself and never tells the server, so they cannot be counted
  // against a limit (see README, "Pings"); this holds that they stay cheap.
  const configDir = await testConfigDir({ floodOff: true });
  const server = await startServerProcess({ env: { CHAT_CONFIG_DIR: configDir } });
  try {
    const port = Number(new URL(server.httpUrl).port);
    const bystander = await TestClient.connect(`ws://127.0.0.1:${port}/ws?name=Bystander`);
    await bystander.next();
    const { conn } = await rawUpgrade(port, { path: "/ws?name=Pinger" });
    // 64 masked pings of 125 bytes a write, as fast as the socket takes them.
    const ping = new Uint8Array([0x89, 0x80 | 125, 0, 0, 0, 0, ...new Uint8Array(125)]);
    const pings = new Uint8Array(ping.length * 64).map((_, i) => ping[i % ping.length]);
    let flooding = true;
    let pongBytes = 0;
    const reader = (async () => {
      const buffer = new Uint8Array(65_536);
      while (flooding) {
        const read = await conn.read(buffer).catch(() => null);
        if (read === null) return;
        pongBytes += read;
      }
    })();
    const writer = (async () => {
      while (flooding) await conn.write(pings).catch(() => flooding = false);
    })();
    const answers: number[] = [];
    for (let i = 0; i < 40; i++) {
      const sent = performance.now();
      bystander.send("!ping");
      await bystander.waitFor((frame) => frame.body === "pong!");
      answers.push(performance.now() - sent);
      await delay(25);
    }
    flooding = false;
    conn.close();
    await Promise.all([reader, writer]);
    await bystander.close();
    answers.sort((a, b) => a - b);
    assert(pongBytes > 100_000, `only ${pongBytes} bytes of pongs: the flood did not happen`);
    const median = answers[answers.length >> 1];
    assert(median < 25, `the bystander's median answer took ${median.toFixed(1)} ms`);
  } finally {
    await server.kill();
    await Deno.remove(configDir, { recursive: true });
  }
});
