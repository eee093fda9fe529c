/**
 * Someone typing, over real sockets: v2 members of the room see it, the one
 * typing, other rooms and text clients do not; and across instances through
 * NATS, where only the instances following the room hear it, and a note
 * about a user the sending instance does not hold is not believed.
 */

import { assertEquals } from "@std/assert";
import { wsconnect } from "@nats-io/nats-core";
import { FLOOD_OFF, startTestServer, type TestClient, type V2Frame } from "./_client.ts";
import { type Cluster, startCluster } from "./_cluster.ts";
import { freePort, natsAvailable } from "./_nats.ts";

function send(client: TestClient<V2Frame>, request: Record<string, unknown>): void {
  client.send(JSON.stringify(request));
}

/** The frames `client` gets up to and including the first that `last` matches. */
async function framesUntil<F extends object>(
  client: TestClient<F>,
  last: (frame: F) => boolean,
  what: string,
): Promise<F[]> {
  const frames: F[] = [];
  await client.waitFor((frame) => {
    frames.push(frame);
    return last(frame);
  }, what);
  return frames;
}

const types = (frames: V2Frame[]) => frames.map((frame) => frame.type);

Deno.test("typing over real sockets: the room's v2 members see it, nobody else", async () => {
  const server = startTestServer({ chat: { flood: FLOOD_OFF } });
  try {
    const { client: ann } = await server.joinV2("Ann");
    const { client: bob } = await server.joinV2("Bob");
    const { client: cid } = await server.joinV2("Cid");
    send(cid, { type: "join", room: "elsewhere" });
    await cid.waitFor((frame) => frame.type === "members", "cid's room");
    const { client: tom } = await server.join("?name=Tom");
    await bob.waitFor((frame) => frame.type === "presence" && frame.from === "Tom", "Tom");
    await ann.waitFor((frame) => frame.type === "presence" && frame.from === "Tom", "Tom");

    send(ann, { type: "typing" });
    const [shown] = await framesUntil(bob, (frame) => frame.type === "typing", "the typing");
    const { id, sentAt, ...rest } = shown;
    assertEquals(rest, { type: "typing", room: "lobby", from: "Ann" });
    assertEquals([typeof id, typeof sentAt], ["string", "string"]);

    // A second one at once is dropped; what Ann says next is the next thing Bob gets.
    send(ann, { type: "typing" });
    send(ann, { type: "say", text: "hi" });
    assertEquals(types(await framesUntil(bob, (frame) => frame.type === "message", "hi")), [
      "message",
    ]);
    assertEquals(
      types(await framesUntil(ann, (frame) => frame.type === "message", "ann's own hi")),
      ["message"],
      "the one typing is not told",
    );
    const tomFrames = await framesUntil(tom, (frame) => frame.body === "Ann: hi", "hi for Tom");
    assertEquals(tomFrames.map((frame) => frame.body), ["Ann: hi"], "text clients see nothing");
    send(cid, { type: "ping" });
    assertEquals(
      types(await framesUntil(cid, (frame) => frame.type === "system", "pong")),
      ["system"],
      "another room sees nothing",
    );

    // The text protocol has no such command.
    tom.send("!typing");
    assertEquals((await tom.next()).body, '"!typing" is not a valid command');
  } finally {
    await server.close();
  }
});

Deno.test({
  name: "cluster: typing reaches the room's members on every instance, and no one else",
  ignore: !natsAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const monitor = freePort();
    const cluster: Cluster = await startCluster({
      instances: 3,
      natsServer: { config: [`http: "127.0.0.1:${monitor}"`] },
    });
    const nc = await wsconnect({ servers: cluster.nats.wsUrl });
    /** How many connections subscribe to exactly `subject`. */
    const subscribers = async (subject: string) => {
      const connz = await (await fetch(`http://127.0.0.1:${monitor}/connz?subs=1`)).json();
      return (connz.connections as { subscriptions_list?: string[] }[])
        .filter((connection) => connection.subscriptions_list?.includes(subject)).length;
    };
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      const { client: cid } = await cluster.v2(2, { type: "hello", name: "Cid", room: "quiet" });
      await cid.waitFor((frame) => frame.type === "members", "Cid's room");
      assertEquals(
        [await subscribers("chat.typing.lobby"), await subscribers("chat.typing.quiet")],
        [2, 1],
        "only the instances following a room hear its typing",
      );

      const sniffed = nc.subscribe("chat.typing.lobby", { max: 1 });
      await nc.flush();
      send(ann, { type: "typing" });
      const shown = await bob.waitFor((frame) => frame.type === "typing", "Ann typing");
      assertEquals([shown.room, shown.from], ["lobby", "Ann"]);
      let real: Record<string, unknown> = {};
      for await (const message of sniffed) real = message.json();

      // A note naming a user the sending instance does not hold is not believed.
      const forged = {
        room: "lobby",
        sentAt: Date.now(),
        author: { instance: "00000000", userId: 1, name: "Ann" },
      };
      nc.publish("chat.typing.lobby", JSON.stringify(forged));
      nc.publish("chat.typing.lobby", "not json");
      // Ann's own note, at a time no date can show: refused, and nothing stops reading.
      nc.publish("chat.typing.lobby", JSON.stringify({ ...real, sentAt: 8.7e15 }));
      await nc.flush();
      send(ann, { type: "say", text: "after" });
      assertEquals(
        types(await framesUntil(bob, (frame) => frame.type === "message", "after")),
        ["message"],
      );
      send(cid, { type: "ping" });
      assertEquals(types(await framesUntil(cid, (frame) => frame.type === "system", "pong")), [
        "system",
      ]);
      assertEquals(await cluster.metric(1, "chat_cluster_malformed_total"), 2);
    } finally {
      await nc.close();
      await cluster.dispose();
    }
  },
});
