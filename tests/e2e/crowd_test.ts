/**
 * Limits that hold across addresses: a crowd of clients, each within its
 * own address's limits, must not fill the room directory for everyone nor
 * flood a room or the whole server.
 */

import { delay } from "@std/async/delay";
import { assert, assertEquals } from "@std/assert";
import type { ChatConfig } from "../../src/config/mod.ts";
import {
  FLOOD_OFF,
  TestClient,
  type TestServer,
  type TestServerOptions,
  withServer,
} from "./_client.ts";

const API_KEY = "an-api-key-for-the-crowd-tests-0123";
const ROOM_BUSY = (room: string) =>
  `${room} takes no more messages for the moment: yours was not sent. Wait a little.`;
const SERVER_BUSY =
  "The server takes no more messages for the moment: yours was not sent. Wait a little.";
const ROOMS_BUSY =
  "Too many rooms are being created right now: join an existing one, or wait a moment.";

/** A server behind a trusted proxy (so each client names its address), with `chat` changed. */
function crowdServer(
  chat: Partial<ChatConfig>,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const options: TestServerOptions = {
    chat: { presenceRate: 100_000, presenceBurst: 100_000, ...chat },
    limits: { connectRate: 10_000, connectBurst: 10_000, trustedProxies: ["127.0.0.1"] },
    apiKeys: [API_KEY],
  };
  return withServer(options, body);
}

/** A text client from `address`, past its welcome. */
async function from(server: TestServer, address: string, name: string): Promise<TestClient> {
  const client = await TestClient.connect(`${server.url}?name=${name}`, undefined, {
    "X-Forwarded-For": address,
  });
  await client.waitFor((frame) => frame.body.startsWith(`Welcome, ${name} `));
  return client;
}

const NO_MORE_ROOMS = "No more rooms can be created right now: join an existing one.";

/**
 * Sends `!join room` until it is granted (a room that just emptied is spared
 * a moment before it may make way), for at most 5 s; returns the answer.
 */
async function joinEventually(client: TestClient, room: string): Promise<string> {
  const deadline = Date.now() + 5000;
  while (true) {
    const answer = await join(client, room);
    if (answer !== NO_MORE_ROOMS || Date.now() > deadline) return answer;
    await delay(100);
  }
}

/** Presence notices, which come between the answers these tests wait for. */
const PRESENCE = / has (connected|disconnected)!$| has (joined|left) /;

/** Sends `!join room` and returns the server's answer. */
async function join(client: TestClient, room: string): Promise<string> {
  client.send(`!join ${room}`);
  const answer = await client.waitFor((frame) =>
    frame.origin === "SERVER" && !PRESENCE.test(frame.body)
  );
  return answer.body;
}

Deno.test("a crowd of addresses cannot lock a newcomer out of max_rooms", async (t) => {
  await t.step("the emptiest, least-used rooms make way; rooms with members stay", async () => {
    const chat = {
      flood: FLOOD_OFF,
      maxRooms: 31,
      // Rooms are spared for unused_room_ttl once empty (someone may be on the way in).
      unusedRoomTtl: 0.3,
      serverRoomCreateRate: 100_000,
      serverRoomCreateBurst: 100_000,
    };
    await crowdServer(chat, async (server) => {
      // A room people talked in, now empty: worth more than a room a bot said one line in.
      const ann = await from(server, "10.1.0.1", "Ann");
      assertEquals(await join(ann, "chatty"), "You are now in chatty with: Ann");
      for (let i = 1; i <= 5; i++) {
        ann.send(`line ${i}`);
        await ann.waitFor((frame) => frame.body === `Ann: line ${i}`);
      }
      assertEquals(await join(ann, "lobby"), "You are now in lobby with: Ann");
      // 20 addresses, each within its own limit of 5 new rooms, say one line in each
      // they get (when every room is full or just made, the directory refuses them).
      const bots = await Promise.all(
        Array.from({ length: 20 }, (_, i) => from(server, `10.2.0.${i + 1}`, `Bot${i}`)),
      );
      const landed = await Promise.all(bots.map(async (bot, i) => {
        let last: string | undefined;
        for (let room = 0; room < 5; room++) {
          const answer = await join(bot, `spam${i}x${room}`);
          if (answer === NO_MORE_ROOMS) continue;
          assert(answer.startsWith(`You are now in spam${i}x${room}`), answer);
          bot.send("first!");
          await bot.waitFor((frame) => frame.body === `Bot${i}: first!`);
          last = `spam${i}x${room}`;
        }
        return last;
      }));
      const newcomer = await from(server, "10.3.0.1", "Newcomer");
      assertEquals(
        await joinEventually(newcomer, "myteam"),
        "You are now in myteam with: Newcomer",
      );
      assertEquals(await join(newcomer, "chatty"), "You are now in chatty with: Newcomer");
      await newcomer.waitFor((frame) => frame.body === "Ann: line 5");
      // Each bot is still in the last room it got: rooms with members are never taken.
      for (const [i, bot] of bots.entries()) {
        if (landed[i] === undefined) continue;
        bot.send("still here");
        await bot.waitFor((frame) => frame.body === `Bot${i}: still here`);
      }
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      const reclaimed = Number(/^chat_rooms_reclaimed_total (\d+)$/m.exec(metrics)?.[1]);
      assert(reclaimed >= 1, metrics);
      await Promise.all([ann, newcomer, ...bots].map((client) => client.close()));
    });
  });

  await t.step("with every room held by members, a new room is refused", async () => {
    await crowdServer({ flood: FLOOD_OFF, maxRooms: 3 }, async (server) => {
      const ann = await from(server, "10.1.0.1", "Ann");
      const bob = await from(server, "10.1.0.2", "Bob");
      assertEquals(await join(ann, "one"), "You are now in one with: Ann");
      assertEquals(await join(bob, "two"), "You are now in two with: Bob");
      const carol = await from(server, "10.1.0.3", "Carol");
      assertEquals(await join(carol, "three"), NO_MORE_ROOMS);
      await Promise.all([ann, bob, carol].map((client) => client.close()));
    });
  });

  await t.step(
    "rooms created too fast by everyone together wait, but not a newcomer's",
    async () => {
      const chat = { flood: FLOOD_OFF, serverRoomCreateRate: 0.001, serverRoomCreateBurst: 6 };
      await crowdServer(chat, async (server) => {
        const clients = await Promise.all(
          [1, 2, 3, 4].map((i) => from(server, `10.4.0.${i}`, `User${i}`)),
        );
        for (const [i, client] of clients.slice(0, 3).entries()) {
          for (const room of ["a", "b"]) {
            assertEquals(
              await join(client, `${room}${i}`),
              `You are now in ${room}${i} with: User${i + 1}`,
            );
          }
        }
        // The server's rate is spent, but whoever made no room lately still gets one in,
        // so a crowd spending it cannot keep newcomers out; a second one waits.
        const late = clients[3];
        assertEquals(await join(late, "mine"), "You are now in mine with: User4");
        assertEquals(await join(late, "another"), ROOMS_BUSY);
        assertEquals(await join(late, "b0"), "You are now in b0 with: User1, User4");
        await Promise.all(clients.map((client) => client.close()));
      });
    },
  );
});

Deno.test("a crowd of addresses cannot flood a room or the server", async (t) => {
  await t.step("a room accepts room_burst at once, whoever sends", async () => {
    const flood = { ...FLOOD_OFF, roomRate: 0.001, roomBurst: 10 };
    await crowdServer({ flood }, async (server) => {
      const bystander = await from(server, "10.5.0.1", "Bystander");
      const senders = await Promise.all(
        Array.from({ length: 8 }, (_, i) => from(server, `10.6.0.${i + 1}`, `Sender${i}`)),
      );
      for (const sender of senders) for (let i = 0; i < 5; i++) sender.send(`spam ${i}`);
      // Every sender is answered, one frame for each of its lines, in order.
      let accepted = 0;
      for (const [index, sender] of senders.entries()) {
        for (let i = 0; i < 5; i++) {
          const frame = await sender.waitFor((frame) =>
            frame.body === `Sender${index}: spam ${i}` || frame.body === ROOM_BUSY("lobby")
          );
          if (frame.origin !== "SERVER") accepted++;
        }
      }
      assertEquals(accepted, 10);
      const seen = [];
      while (seen.length < 10) {
        seen.push(await bystander.waitFor((frame) => frame.body.startsWith("Sender")));
      }
      // Another room is not slowed by this one.
      assertEquals(await join(bystander, "calm"), "You are now in calm with: Bystander");
      bystander.send("hello");
      await bystander.waitFor((frame) => frame.body === "Bystander: hello");
      const answer = await fetch(`${server.httpUrl}/api/v1/rooms/lobby/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ from: "Deploybot", text: "news" }),
      });
      assertEquals([answer.status, await answer.json()], [429, {
        error: { code: "too_many_requests", message: ROOM_BUSY("lobby") },
      }]);
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      assert(/^chat_messages_dropped_total\{reason="room_rate"\} 31$/m.test(metrics), metrics);
      await Promise.all([bystander, ...senders].map((client) => client.close()));
    });
  });

  await t.step("a person takes private messages at a room's rate, whoever sends", async () => {
    const flood = { ...FLOOD_OFF, roomRate: 0.001, roomBurst: 3 };
    await crowdServer({ flood }, async (server) => {
      const target = await from(server, "10.8.0.1", "Target");
      const senders = await Promise.all(
        [1, 2, 3, 4].map((i) => from(server, `10.9.0.${i}`, `Sender${i}`)),
      );
      let delivered = 0;
      for (const [i, sender] of senders.entries()) {
        for (const text of ["one", "two"]) {
          sender.send(`!pm Target ${text} from ${i}`);
          const answer = await sender.waitFor((frame) =>
            frame.body.startsWith("PM -> Target") || frame.body === ROOM_BUSY("Target")
          );
          if (answer.body.startsWith("PM -> Target")) delivered++;
        }
      }
      assertEquals(delivered, 3);
      for (let i = 0; i < 3; i++) await target.waitFor((frame) => frame.body.startsWith("PM <- "));
      await Promise.all([target, ...senders].map((client) => client.close()));
    });
  });

  await t.step("the server accepts server_burst at once, in all rooms and privately", async () => {
    const flood = { ...FLOOD_OFF, serverRate: 0.001, serverBurst: 6 };
    await crowdServer({ flood }, async (server) => {
      const ann = await from(server, "10.7.0.1", "Ann");
      const bob = await from(server, "10.7.0.2", "Bob");
      assertEquals(await join(bob, "elsewhere"), "You are now in elsewhere with: Bob");
      // A private message to nobody goes nowhere, and costs the server's rate nothing.
      for (let i = 0; i < 3; i++) {
        ann.send("!pm Nobody psst");
        await ann.waitFor((frame) => frame.body === "!pm error: user Nobody not found");
      }
      for (const [client, name] of [[ann, "Ann"], [bob, "Bob"]] as const) {
        for (const text of ["one", "two", "three"]) {
          client.send(text);
          await client.waitFor((frame) => frame.body === `${name}: ${text}`);
        }
      }
      ann.send("!pm Bob psst");
      await ann.waitFor((frame) => frame.body === SERVER_BUSY);
      bob.send("four");
      await bob.waitFor((frame) => frame.body === SERVER_BUSY);
      const metrics = await fetch(`${server.httpUrl}/metrics`).then((answer) => answer.text());
      assert(/^chat_messages_dropped_total\{reason="server_rate"\} 2$/m.test(metrics), metrics);
      await Promise.all([ann, bob].map((client) => client.close()));
    });
  });
});
