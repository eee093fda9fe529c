import { assert, assertEquals, assertMatch } from "@std/assert";
import { FLOOD_OFF, startTestServer, TestClient } from "./_client.ts";

/** Flood limits high enough that these tests, which send fast, are never throttled. */
const NO_FLOOD = { chat: { flood: FLOOD_OFF } };

Deno.test("connecting over a real socket", async (t) => {
  const server = startTestServer();
  try {
    await t.step("the newcomer is welcomed and the others are told", async () => {
      const alice = await server.join();
      const bob = await TestClient.connect(server.url);
      const welcome = await bob.next();
      assertEquals(welcome.origin, "SERVER");
      assertMatch(
        welcome.body,
        /^Welcome, [A-Z][a-z]+[A-Z][a-z]+ \(hint: type "!help" for help\)$/,
      );
      const bobName = welcome.body.split(" ")[1];
      assertEquals(await alice.client.nextPair(), ["SERVER", `${bobName} has connected!`]);
      await bob.close();
      assertEquals(await alice.client.nextPair(), ["SERVER", `${bobName} has disconnected!`]);
    });

    await t.step("frames carry an ISO 8601 UTC sentAt", async () => {
      const { client } = await server.join();
      client.send("!ping");
      const frame = await client.next();
      assertEquals(Object.keys(frame).sort(), ["body", "origin", "sentAt"]);
      assertMatch(frame.sentAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    await t.step("/ also upgrades", async () => {
      const client = await TestClient.connect(server.url.replace(/\/ws$/, "/"));
      assertMatch((await client.next()).body, /^Welcome, /);
      await client.close();
    });

    await t.step(
      "?name= picks the name; taken or invalid falls back to a generated one",
      async () => {
        const { name } = await server.join("?name=Zoe");
        assertEquals(name, "Zoe");
        const taken = await server.join("?name=zoe");
        assert(taken.name !== "zoe" && taken.name !== "Zoe", taken.name);
        const invalid = await server.join(`?name=${encodeURIComponent("two words")}`);
        assertMatch(invalid.name, /^[A-Z][a-z]+[A-Z][a-z]+\d*$/);
      },
    );

    await t.step("/healthz counts open connections", async () => {
      const response = await fetch(`${server.httpUrl}/healthz`);
      assertEquals(await response.json(), { status: "ok", connections: server.chatroom.size });
      assert(server.chatroom.size > 0);
    });
  } finally {
    await server.close();
  }
});

Deno.test("chatting over a real socket", async (t) => {
  const server = startTestServer(NO_FLOOD);
  try {
    const alice = await server.join("?name=Alice");
    const bob = await server.join("?name=Bob");
    const carol = await server.join("?name=Carol");
    await alice.client.waitFor((frame) => frame.body === "Carol has connected!");
    await bob.client.waitFor((frame) => frame.body === "Carol has connected!");

    await t.step("a message reaches the others as USER and the sender as SELF", async () => {
      alice.client.send("hello, world");
      assertEquals(await alice.client.nextPair(), ["SELF", "Alice: hello, world"]);
      assertEquals(await bob.client.nextPair(), ["USER", "Alice: hello, world"]);
      assertEquals(await carol.client.nextPair(), ["USER", "Alice: hello, world"]);
    });

    await t.step("text over max_message_len is cut", async () => {
      alice.client.send("é".repeat(1500));
      assertEquals(await bob.client.nextPair(), ["USER", `Alice: ${"é".repeat(1000)}`]);
      await alice.client.next();
      await carol.client.next();
    });

    await t.step("every command answers as specified", async () => {
      const expectations: [string, string][] = [
        ["!ping", "pong!"],
        ["!ENV", "Environment: TEST"],
        ["!who", "Connected Users: Alice, Bob, Carol"],
        ["!setname", "Usage: !setname <new name>"],
        ["!pm", "Usage: !pm <user> <message>"],
        ["!pm Bob", "Usage: !pm <user> <message>"],
        ["!pm Nobody hi", "!pm error: user Nobody not found"],
        ["!fly away", '"!fly away" is not a valid command'],
      ];
      for (const [command, reply] of expectations) {
        alice.client.send(command);
        assertEquals(await alice.client.nextPair(), ["SERVER", reply], command);
      }
      alice.client.send("!about");
      assertEquals((await alice.client.next()).origin, "SERVER");
      alice.client.send("!help");
      const help = (await alice.client.next()).body.split("\n");
      assertEquals(help[0], "Available commands:");
      assertEquals(help.slice(1).map((line) => line.split(" ")[0]), [
        "!help",
        "!about",
        "!setname",
        "!who",
        "!env",
        "!ping",
        "!pm",
        "!join",
        "!leave",
        "!rooms",
        "!me",
        "!history",
        "!delete",
        "!topic",
        "!op",
      ]);
      assertEquals(bob.client.pending.length, 0);
    });

    await t.step("!pm reaches only its target", async () => {
      alice.client.send("!pm bob meet at noon");
      assertEquals(await bob.client.nextPair(), ["PRIVATE", "PM <- Alice: meet at noon"]);
      assertEquals(await alice.client.nextPair(), ["PRIVATE", "PM -> Bob: meet at noon"]);
      carol.client.send("!ping");
      assertEquals(await carol.client.nextPair(), ["SERVER", "pong!"]);
    });

    await t.step("!setname renames for everyone", async () => {
      bob.client.send("!setname Big Bird");
      const notice = ["SERVER", '"Bob" has changed their name to "BigBird"'];
      assertEquals(await bob.client.nextPair(), notice);
      assertEquals(await alice.client.nextPair(), notice);
      assertEquals(await carol.client.nextPair(), notice);
      alice.client.send("!who");
      assertEquals(await alice.client.nextPair(), [
        "SERVER",
        "Connected Users: Alice, BigBird, Carol",
      ]);
    });
  } finally {
    await server.close();
  }
});
