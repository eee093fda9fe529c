/**
 * Rooms across instances: a look-alike of a room people are in elsewhere is
 * that room, and an instance that drops a room it only knew by name (to make
 * way at max_rooms) never takes the cluster's history of it along.
 */

import { delay } from "@std/async/delay";
import { assert, assertEquals } from "@std/assert";
import type { TestClient } from "./_client.ts";
import { startCluster } from "./_cluster.ts";
import { natsAvailable } from "./_nats.ts";

/** Sends `!join room` until it is granted (for at most 10 s); returns the answer. */
async function joinEventually(client: TestClient, room: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (true) {
    client.send(`!join ${room}`);
    const answer = await client.waitFor((frame) =>
      frame.body.startsWith("You are now in") || frame.body.startsWith("No more rooms")
    );
    if (answer.body.startsWith("You are now in") || Date.now() > deadline) return answer.body;
    await delay(100);
  }
}

Deno.test({
  name: "cluster: rooms are one across instances, and their history stays",
  ignore: !natsAvailable(),
  fn: async (t) => {
    const cluster = await startCluster({
      instances: 3,
      chat: { max_rooms: "3", unused_room_ttl: "0.3" },
    });
    try {
      const alice = await cluster.text(0, "?name=alice");
      const bob = await cluster.text(1, "?name=bob");

      await t.step("a look-alike of a room people are in elsewhere is that room", async () => {
        alice.send("!join team");
        await alice.waitFor((frame) => frame.body === "You are now in team with: alice");
        // Instance 1 hears of alice's room through the names bucket.
        const deadline = Date.now() + 10_000;
        let rooms = "";
        while (!rooms.includes("team (1)") && Date.now() < deadline) {
          bob.send("!rooms");
          rooms = (await bob.waitFor((frame) => frame.body.startsWith("Rooms:"))).body;
          if (!rooms.includes("team (1)")) await delay(100);
        }
        bob.send("!join \u0422\u0415\u0410\u041C"); // Cyrillic capitals
        const answer = (await bob.waitFor((frame) => frame.body.startsWith("You are"))).body;
        assertEquals(answer, "You are now in team with: alice, bob");
        bob.send("hello team");
        await alice.waitFor((frame) => frame.body === "bob: hello team");
      });

      await t.step("a room dropped on one instance keeps its history for the others", async () => {
        bob.send("!join busy");
        await bob.waitFor((frame) => frame.body.startsWith("You are now in busy"));
        for (let i = 1; i <= 5; i++) {
          bob.send(`line ${i}`);
          await bob.waitFor((frame) => frame.body === `bob: line ${i}`);
        }
        // Instance 0 knows busy only by name; alice leaves team, and two new rooms there
        // make it drop rooms it holds no one in.
        alice.send("!rooms");
        await alice.waitFor((frame) =>
          frame.body.startsWith("Rooms:") && frame.body.includes("busy")
        );
        bob.send("!leave");
        await bob.waitFor((frame) => frame.body.startsWith("You are now in lobby"));
        assertEquals(await joinEventually(alice, "x"), "You are now in x with: alice");
        assertEquals(await joinEventually(alice, "y"), "You are now in y with: alice");
        assert(await cluster.metric(0, "chat_rooms_reclaimed_total") >= 1);
        const carol = await cluster.text(2, "?name=carol");
        carol.send("!join busy");
        await carol.waitFor((frame) => frame.body === "bob: line 5");
        await carol.close();
      });
    } finally {
      await cluster.dispose();
    }
  },
});
