/**
 * Moderation against the real server: every command as a moderator and as
 * anyone else, bans that hold across a restart, and moderation across two
 * instances joined through NATS.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";
import { join } from "@std/path";
import {
  FLOOD_OFF,
  rawUpgrade,
  startTestServer,
  TestClient,
  type TestServer,
  within,
} from "./_client.ts";
import { startCluster } from "./_cluster.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable } from "./_nats.ts";
import { startServerProcess } from "./_process.ts";

const PASSWORD = "correct horse battery staple";
/** Flood control out of the way: the steps send many commands from one address. */

/** Connects a text client with `?name=`, past its welcome and what follows it. */
async function connectAs(server: TestServer | string, name: string): Promise<TestClient> {
  const url = typeof server === "string" ? server : server.url;
  const client = await TestClient.connect(`${url}?name=${name}`);
  await client.waitFor((frame) => frame.body.startsWith("Welcome, "), "the welcome");
  return client;
}

/** The next frame from the server that is not a presence notice. */
async function answer(client: TestClient): Promise<string> {
  const frame = await client.waitFor((frame) =>
    frame.origin === "SERVER" && !/ has (connected|disconnected)!$/.test(frame.body)
  );
  return frame.body;
}

/** Waits until `client` has received every one of `bodies`, in any order. */
async function receives(client: TestClient, bodies: string[]): Promise<void> {
  const left = new Set(bodies);
  while (left.size > 0) {
    await client.waitFor((frame) => left.delete(frame.body), [...left].join(" and "));
  }
}

/** The status of an upgrade from this address now. */
async function upgradeStatus(port: number): Promise<number> {
  const { status, conn } = await rawUpgrade(port);
  conn.close();
  return status;
}

Deno.test("moderation in the chat", async (t) => {
  const server = startTestServer({ operatorPassword: PASSWORD, chat: { flood: FLOOD_OFF } });
  try {
    const mod = await connectAs(server, "Mod");
    const bob = await connectAs(server, "Bob");
    const carol = await connectAs(server, "Carol");

    await t.step("!help lists !op, not the moderators' commands", async () => {
      bob.send("!help");
      const help = await answer(bob);
      assert(help.includes("!op <password>"), help);
      assert(!help.includes("!kick"), help);
    });

    const refusals: [string, string][] = [
      ["!kick Carol", "Only moderators may use !kick."],
      ["!mute Carol 10m", "Only moderators may use !mute."],
      ["!ban Carol 1h", "Only moderators may use !ban."],
      ["!unban Carol", "Only moderators may use !unban."],
      ["!topic Free pizza", "Only moderators may use !topic."],
      ["!slow 5", "Only moderators may use !slow."],
      ["!op wrong password", "Wrong operator password."],
    ];
    for (const [command, reply] of refusals) {
      await t.step(`${command} from a user: ${reply}`, async () => {
        bob.send(command);
        assertEquals(await answer(bob), reply);
      });
    }

    await t.step("!op with the password makes a moderator", async () => {
      mod.send(`!op ${PASSWORD}`);
      assertEquals(await answer(mod), "You are now a moderator.");
      mod.send("!help");
      assert((await answer(mod)).includes("!kick <user> [reason]"));
      assertEquals(server.metrics.moderationRefused.get(), refusals.length);
    });

    await t.step("!topic sets the topic for the room, shown on join and in !rooms", async () => {
      mod.send("!topic Free pizza at noon");
      const notice = "Mod set the topic of lobby: Free pizza at noon";
      for (const client of [mod, bob, carol]) assertEquals(await answer(client), notice);
      bob.send("!topic");
      assertEquals(await answer(bob), "Topic of lobby: Free pizza at noon");
      bob.send("!rooms");
      assertEquals(await answer(bob), "Rooms: lobby (3, topic: Free pizza at noon)");
      const dave = await TestClient.connect(`${server.url}?name=Dave`);
      await dave.next();
      assertEquals(await answer(dave), "Topic of lobby: Free pizza at noon");
      await dave.close();
    });

    await t.step(
      "!slow lets each user speak once per interval; moderators are not slowed",
      async () => {
        mod.send("!slow 30");
        const notice = "Mod set slow mode in lobby: one message every 30 s per user.";
        for (const client of [mod, bob, carol]) assertEquals(await answer(client), notice);
        bob.send("first");
        await bob.waitFor((frame) => frame.body === "Bob: first");
        bob.send("second");
        assertMatch(
          await answer(bob),
          /^Slow mode in lobby: wait (30|29) s before your next message\.$/,
        );
        mod.send("one");
        mod.send("two");
        await mod.waitFor((frame) => frame.body === "Mod: two");
        mod.send("!slow 0");
        for (const client of [mod, bob, carol]) {
          assertEquals(await answer(client), "Mod turned slow mode off in lobby.");
        }
      },
    );

    await t.step("!mute silences a user, !unmute lets them speak", async () => {
      mod.send("!mute Bob 10m spamming links");
      assertEquals(await answer(mod), "Done: Bob is muted for 10 minutes.");
      assertEquals(await answer(bob), "You are muted for 10 minutes by Mod: spamming links");
      bob.send("hello?");
      assertEquals(
        await answer(bob),
        "You are muted for 10 minutes more: your message was not sent.",
      );
      bob.send("!pm Carol psst");
      assertMatch(await answer(bob), /^You are muted for/);
      bob.send("!setname bob2");
      assertEquals(await answer(bob), 'Cannot change your name to "bob2": you are muted');
      mod.send("!unmute Bob");
      assertEquals(await answer(mod), "Done: Bob may speak again.");
      assertEquals(await answer(bob), "You may speak again.");
      bob.send("back");
      await carol.waitFor((frame) => frame.body === "Bob: back");
    });

    await t.step("!kick disconnects with 4003 and tells the room why", async () => {
      mod.send("!kick Carol calm down");
      await mod.waitFor((frame) => frame.body === "Carol was kicked by Mod: calm down");
      assertEquals(await answer(mod), "Done: Carol was removed.");
      assertEquals(await answer(carol), "You were removed from the chat by Mod: calm down");
      assertEquals((await within(carol.closed, "the kick")).code, 4003);
      assertEquals(
        (await bob.waitFor((frame) => frame.body.includes("kicked"))).body,
        "Carol was kicked by Mod: calm down",
      );
      // A kick is not a ban: Carol may come back.
      const back = await connectAs(server, "Carol");
      await back.close();
    });

    await t.step("!ban removes the user and keeps their address out", async () => {
      mod.send("!ban Bob 1h flooding");
      assertEquals((await within(bob.closed, "the ban")).code, 4003);
      await mod.waitFor((frame) => frame.body === "Bob was banned by Mod: flooding");
      assertEquals(await answer(mod), "Done: Bob is banned for 1 hour.");
      assertEquals(await upgradeStatus(server.port), 403);
      assertEquals(server.metrics.connectionsRefused.get("banned"), 1);
      // The address is held with the name, and lifted with it.
      const bans = server.chatroom.moderation.bans();
      assertEquals(bans.map((ban) => [ban.name, ban.address, ban.for, ban.reason]), [
        ["Bob", undefined, undefined, "flooding"],
        [undefined, "127.0.0.1", "bob", "flooding"],
      ]);
    });

    await t.step("!unban lets them in again", async () => {
      mod.send("!unban Bob");
      assertEquals(await answer(mod), "Done: Bob is no longer banned.");
      assertEquals(await upgradeStatus(server.port), 101);
      mod.send("!unban Bob");
      assertEquals(await answer(mod), "Bob is not banned.");
    });

    await t.step("bans of an address, and of a name nobody holds", async () => {
      mod.send("!ban addr:10.1.2.3 1d botnet");
      assertEquals(await answer(mod), "Done: 10.1.2.3 is banned for 1 day.");
      mod.send("!ban name:Zed 2h");
      assertEquals(await answer(mod), "Done: Zed is banned for 2 hours.");
      const zed = await TestClient.connect(`${server.url}?name=Zed`);
      await zed.next();
      assertMatch((await zed.next()).body, /^Cannot use the name "Zed": it is banned\. You are /);
      await zed.close();
      mod.send("!ban name:bad!name 1h");
      assertEquals(
        await answer(mod),
        '"name:bad!name" cannot be held: it may only contain letters, digits, "_", "-" and ".".',
      );
      mod.send("!mute Bob forever");
      assertEquals(
        await answer(mod),
        "Usage: !mute <target> <duration> [reason]",
      );
      // Whatever a client sends, a ban lasts a year at most and its reason is one plain line.
      const v2 = (await server.joinV2("Vmod")).client;
      v2.send(JSON.stringify({ type: "op", password: PASSWORD }));
      await v2.waitFor((event) => event.text === "You are now a moderator.");
      v2.send(JSON.stringify({
        type: "ban",
        target: "addr:10.7.7.7",
        seconds: 365 * 86_400,
        reason: "spam\nMod: \u202Eevil",
      }));
      const done = await v2.waitFor((event) =>
        event.type === "system" && String(event.text).startsWith("Done")
      );
      assertEquals(done.text, "Done: 10.7.7.7 is banned for 365 days.");
      const ban = server.chatroom.moderation.banOf(undefined, "10.7.7.7");
      assertEquals(ban?.reason, "spamMod: evil");
    });

    await t.step("every action is counted", () => {
      const counted = ["kick", "mute", "unmute", "ban", "unban", "topic", "slow"] as const;
      assertEquals(
        counted.map((action) => server.metrics.moderationActions.get(action)),
        [1, 1, 1, 4, 1, 1, 2],
      );
    });
    await mod.close();
  } finally {
    await server.close();
  }
});

Deno.test("wrong operator passwords hold back their session, and their address only past 50", async (t) => {
  const server = startTestServer({ operatorPassword: PASSWORD, chat: { flood: FLOOD_OFF } });
  // The wait is 5 s from the last wrong guess; a slow machine may have spent one of them.
  const waitAnswer = /^Too many wrong operator passwords: try again in [45] s\.$/;
  const clients: TestClient[] = [];
  const session = async (name: string): Promise<TestClient> => {
    const client = await connectAs(server, name);
    clients.push(client);
    return client;
  };
  /** A session of every test client's address that guesses wrong five times. */
  const guessWrong = async (name: string): Promise<TestClient> => {
    const client = await session(name);
    for (let i = 0; i < 5; i++) {
      client.send(`!op wrong guess ${i}`);
      assertEquals(await answer(client), "Wrong operator password.");
    }
    return client;
  };
  try {
    await t.step("after five wrong guesses a session waits, even with the password", async () => {
      const eve = await guessWrong("Eve");
      eve.send(`!op ${PASSWORD}`);
      assertMatch(await answer(eve), waitAnswer);
    });

    await t.step("another session of the same address is not held back", async () => {
      const bob = await session("Bob");
      bob.send(`!op ${PASSWORD}`);
      assertEquals(await answer(bob), "You are now a moderator.");
    });

    await t.step(
      "past 50 wrong guesses from the address, by any road, every session waits",
      async () => {
        for (let i = 1; i < 10; i++) await guessWrong(`Guesser${i}`);
        const carol = await session("Carol");
        carol.send(`!op ${PASSWORD}`);
        assertMatch(await answer(carol), waitAnswer);
        const v2 = (await server.joinV2("Dave")).client;
        v2.send(JSON.stringify({ type: "op", password: PASSWORD }));
        const refused = await v2.waitFor((event) => event.type === "error", "the refusal");
        assertEquals(refused.code, "forbidden");
        assertMatch(String(refused.text), waitAnswer);
      },
    );
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await server.close();
  }
});

Deno.test("bans and topics hold across a restart", async () => {
  const configDir = await testConfigDir({
    floodOff: true,
    server: `history:\n  store: kv\n  path: placeholder\n`,
  });
  const data = await Deno.makeTempDir({ prefix: "chat-mod-" });
  const serverYaml = join(configDir, "test", "server.yaml");
  await Deno.writeTextFile(
    serverYaml,
    (await Deno.readTextFile(serverYaml)).replace("placeholder", join(data, "history.kv")),
  );
  const env = { CHAT_CONFIG_DIR: configDir, CHAT_OPERATOR_PASSWORD: PASSWORD };
  let server = await startServerProcess({ env });
  try {
    const url = server.httpUrl.replace("http", "ws") + "/ws";
    const mod = await connectAs(url, "Mod");
    mod.send(`!op ${PASSWORD}`);
    await answer(mod);
    mod.send("!topic Be kind");
    assertEquals(await answer(mod), "Mod set the topic of lobby: Be kind");
    mod.send("!ban name:Zed 1h impostor");
    assertEquals(await answer(mod), "Done: Zed is banned for 1 hour.");

    await server.kill();
    server = await startServerProcess({ env });
    const again = server.httpUrl.replace("http", "ws") + "/ws";
    const zed = await TestClient.connect(`${again}?name=Zed`);
    await zed.next();
    assertMatch((await zed.next()).body, /^Cannot use the name "Zed": it is banned\. You are /);
    assertEquals((await zed.next()).body, "Topic of lobby: Be kind");
    await zed.close();
  } finally {
    await server.kill();
    await Deno.remove(configDir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test({
  name: "moderation across two instances",
  ignore: !natsAvailable(),
  fn: async (t) => {
    const cluster = await startCluster({
      instances: 2,
      env: { CHAT_OPERATOR_PASSWORD: PASSWORD },
    });
    try {
      const mod = await cluster.text(0, "?name=Mod");
      const bob = await cluster.text(1, "?name=Bob");
      mod.send(`!op ${PASSWORD}`);
      assertEquals(await answer(mod), "You are now a moderator.");
      // Moderation finds Bob through the names bucket: wait until instance 0 has heard of him.
      await within(
        (async () => {
          while (true) {
            mod.send("!who");
            const who = await mod.waitFor((frame) => frame.body.startsWith("Connected Users:"));
            if (who.body.includes("Bob")) return;
            await delay(50);
          }
        })(),
        "instance 0 to know Bob",
      );

      await t.step("a topic set on one instance reaches the room on the other", async () => {
        mod.send("!topic Cluster talk");
        assertEquals(await answer(bob), "Mod set the topic of lobby: Cluster talk");
      });

      await t.step("a mute set on one instance holds on the other", async () => {
        mod.send("!mute Bob 5m");
        assertEquals(await answer(bob), "You are muted for 5 minutes by Mod: no reason given");
        bob.send("hi");
        assertMatch(await answer(bob), /^You are muted for 5 minutes more/);
        mod.send("!unmute Bob");
        assertEquals(await answer(bob), "You may speak again.");
      });

      await t.step("a kick reaches the user's instance", async () => {
        mod.send("!kick Bob off you go");
        assertEquals((await within(bob.closed, "the kick")).code, 4003);
        await mod.waitFor((frame) => frame.body === "Bob was kicked by Mod: off you go");
      });

      await t.step("a ban on one instance removes and refuses the user on the other", async () => {
        const again = await cluster.text(1, "?name=Bob");
        mod.send("!ban Bob 1h");
        assertEquals((await within(again.closed, "the ban")).code, 4003);
        // Open mode: Bob's instance bans the address he came from too, for every instance.
        const port = Number(new URL(cluster.instances[0].httpUrl).port);
        await within(
          (async () => {
            while (await upgradeStatus(port) !== 403) await delay(50);
          })(),
          "the address ban to reach the other instance",
        );
      });
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name: "moderation across two instances decides where the target is",
  ignore: !natsAvailable(),
  fn: async (t) => {
    const cluster = await startCluster({
      instances: 2,
      env: { CHAT_OPERATOR_PASSWORD: PASSWORD },
      limits: { trusted_proxies: '["127.0.0.1"]' },
    });
    const [a, b] = cluster.instances.map((instance) => Number(new URL(instance.httpUrl).port));
    /** The status of an upgrade to `port` from `address`. */
    const statusFrom = async (port: number, address: string): Promise<number> => {
      const { status, conn } = await rawUpgrade(port, {
        headers: { "X-Forwarded-For": address },
      });
      conn.close();
      return status;
    };
    /** Waits until an upgrade from `address` gets `status` on both instances. */
    const settles = (address: string, status: number) =>
      within(
        (async () => {
          for (const port of [a, b]) {
            while (await statusFrom(port, address) !== status) await delay(50);
          }
        })(),
        `${status} from ${address} on both instances`,
      );
    try {
      const mod = await cluster.text(0, "?name=ModAlpha", "10.0.0.1");
      const beta = await cluster.text(1, "?name=ModBeta", "10.0.0.2");
      for (const client of [mod, beta]) {
        client.send(`!op ${PASSWORD}`);
        assertEquals(await answer(client), "You are now a moderator.");
      }
      // ModAlpha's instance asks ModBeta's for a rank: it need not have heard of the !op yet.

      await t.step(
        "a moderator on another instance may not be kicked, banned or muted",
        async () => {
          for (const command of ["!kick ModBeta", "!ban ModBeta 1h", "!mute ModBeta 1h"]) {
            mod.send(command);
            assertEquals(await answer(mod), "You may not moderate ModBeta.", command);
          }
          beta.send("!ping");
          assertEquals(await answer(beta), "pong!");
        },
      );

      await t.step("a kick is done where the user is, and said done only then", async () => {
        const bob = await cluster.text(1, "?name=Bob", "10.0.0.3");
        mod.send("!kick Bob off you go");
        assertEquals((await within(bob.closed, "the kick")).code, 4003);
        await receives(mod, ["Done: Bob was removed.", "Bob was kicked by ModAlpha: off you go"]);
        mod.send("!kick Bob");
        assertEquals(await answer(mod), "No user called Bob is here.");
      });

      await t.step(
        "a ban holds the user's address everywhere; unbanning the name lifts it",
        async () => {
          const bob = await cluster.text(1, "?name=Bob", "10.0.0.3");
          mod.send("!ban Bob 1h");
          assertEquals((await within(bob.closed, "the ban")).code, 4003);
          await receives(mod, [
            "Done: Bob is banned for 1 hour.",
            "Bob was banned by ModAlpha: no reason given",
          ]);
          await settles("10.0.0.3", 403);
          mod.send("!unban Bob");
          assertEquals(await answer(mod), "Done: Bob is no longer banned.");
          await settles("10.0.0.3", 101);
        },
      );

      await t.step("a mute holds the user's address on every instance", async () => {
        const carol = await cluster.text(1, "?name=Carol", "10.0.0.4");
        mod.send("!mute Carol 5m");
        // The record travels through the bucket: slower when the machine is busy.
        await mod.waitFor(
          (frame) => frame.body === "Done: Carol is muted for 5 minutes.",
          "the mute done",
          15_000,
        );
        const told = await carol.waitFor(
          (frame) =>
            frame.origin === "SERVER" && !/ has (connected|disconnected)!$/.test(frame.body),
          "Carol told",
          15_000,
        );
        assertEquals(told.body, "You are muted for 5 minutes by ModAlpha: no reason given");
        for (const index of [1, 0]) {
          const again = await cluster.text(index, "?name=Carla", "10.0.0.4");
          await within(
            (async () => {
              while (true) {
                again.send("hello");
                const frame = await again.waitFor((frame) =>
                  frame.origin === "SELF" || frame.body.startsWith("You are muted")
                );
                if (frame.origin !== "SELF") return;
                await delay(50);
              }
            })(),
            `the muted address on instance ${index}`,
            // The record travels through the bucket: slower when the machine is busy.
            15_000,
          );
          await again.close();
        }
      });
    } finally {
      await cluster.dispose();
    }
  },
});
