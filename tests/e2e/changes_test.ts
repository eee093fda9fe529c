/**
 * Messages taken back, from outside: edits and removals over real sockets
 * (v2 and text), through the server API, kept across a restart of a server
 * whose history is in Deno KV, and the same on every instance of a cluster.
 */

import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { FLOOD_OFF, startTestServer, TestClient, type V2Frame } from "./_client.ts";
import { startCluster } from "./_cluster.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable } from "./_nats.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

const KEY = "api-key-for-the-tests-0123456789";

function send(client: TestClient<V2Frame>, request: Record<string, unknown>): void {
  client.send(JSON.stringify(request));
}

/** The frame without its per-event `id` and `sentAt`. */
function strip(frame: V2Frame): Record<string, unknown> {
  const { id: _id, sentAt: _sentAt, ...rest } = frame;
  return rest;
}

/** Says `text` and returns the message everyone got (its id and seq). */
async function say(client: TestClient<V2Frame>, text: string): Promise<V2Frame> {
  send(client, { type: "say", text });
  return await client.waitFor((frame) => frame.type === "message" && frame.text === text, text);
}

/** The history a newcomer gets after its welcome, up to the `members` that comes first. */
async function historyOf(client: TestClient<V2Frame>, count: number): Promise<V2Frame[]> {
  const history: V2Frame[] = [];
  while (history.length < count) {
    const frame = await client.next();
    if (frame.type === "history" || frame.type === "edit" || frame.type === "delete") {
      history.push(frame);
    }
  }
  return history;
}

Deno.test("taking a message back over real sockets, and through the server API", async () => {
  const server = startTestServer({ chat: { flood: FLOOD_OFF }, apiKeys: [KEY] });
  try {
    const { client: ann } = await server.joinV2("Ann");
    const { client: bob } = await server.joinV2("Bob");
    const { client: tom } = await server.join("?name=Tom");
    const typo = await say(ann, "helo all");
    const spam = await say(ann, "buy now");
    const third = await say(ann, "third");

    send(ann, { type: "edit", id: typo.id, text: "hello all" });
    const edit = await bob.waitFor((frame) => frame.type === "edit", "the edit");
    assertEquals(strip(edit), {
      type: "edit",
      room: "lobby",
      epoch: typo.epoch,
      seq: (third.seq as number) + 1,
      from: "Ann",
      target: typo.id,
      text: "hello all",
    });
    send(ann, { type: "delete", id: spam.id });
    const removal = await bob.waitFor((frame) => frame.type === "delete", "the removal");
    assertEquals([removal.from, removal.target, removal.author], ["Ann", spam.id, "Ann"]);
    await tom.waitFor((frame) => frame.body === "Ann edited a message: hello all", "text edit");
    await tom.waitFor((frame) => frame.body === "A message of Ann was removed", "text removal");

    // Someone else may not; the server API, a moderator, may remove anyone's.
    send(bob, { type: "delete", id: third.id });
    assertEquals(
      (await bob.waitFor((frame) => frame.type === "error", "refusal")).code,
      "forbidden",
    );
    const call = (method: string, path: string) =>
      fetch(`${server.httpUrl}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${KEY}` },
      }).then(async (response) => [response.status, await response.json()]);
    assertEquals(await call("DELETE", `/rooms/lobby/messages/${third.id}`), [200, {
      ok: true,
      what: `message ${third.id} of Ann removed`,
    }]);
    await tom.waitFor(
      (frame) => frame.body === "A message of Ann was removed by api",
      "the API's removal",
    );
    assertEquals(await call("DELETE", `/rooms/lobby/messages/${third.id}`), [404, {
      error: { code: "not_found", message: `No message ${third.id} is kept in lobby.` },
    }]);

    // A newcomer reads the history as it is now: changed, without the changes on top.
    const { client: cid } = await server.joinV2("Cid");
    const history = await historyOf(cid, 3);
    assertEquals(history.map((frame) => [frame.type, frame.text, frame.edited, frame.removed]), [
      ["history", "hello all", true, undefined],
      ["history", "", undefined, true],
      ["history", "", undefined, true],
    ]);
  } finally {
    await server.close();
  }
});

Deno.test({
  name: "a change is kept like a message: after a restart, history reads changed",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-changes-" });
    const configDir = await testConfigDir({
      floodOff: true,
      server: `history:\n  store: kv\n  path: ${join(dir, "history.kv")}\n`,
    });
    const env = { CHAT_CONFIG_DIR: configDir };
    const v2 = async (server: ServerProcess, name: string) => {
      const client = await TestClient.connect<V2Frame>(
        `${server.httpUrl.replace(/^http/, "ws")}/ws`,
        "chat.v2",
      );
      send(client, { type: "hello", name });
      await client.waitFor((frame) => frame.type === "welcome", "the welcome");
      return client;
    };
    let server = await startServerProcess({ env });
    try {
      const ann = await v2(server, "Ann");
      const first = await say(ann, "frist");
      const second = await say(ann, "oops");
      send(ann, { type: "edit", id: first.id, text: "first" });
      await ann.waitFor((frame) => frame.type === "edit", "the edit");
      send(ann, { type: "delete", id: second.id });
      await ann.waitFor((frame) => frame.type === "delete", "the removal");
      await ann.close();
      server.child.kill("SIGTERM");
      await server.child.status;

      server = await startServerProcess({ env });
      const reader = await v2(server, "Reader");
      const history = await historyOf(reader, 2);
      assertEquals(history.map((frame) => [frame.id, frame.text, frame.edited, frame.removed]), [
        [first.id, "first", true, undefined],
        [second.id, "", undefined, true],
      ]);
      await reader.close();
    } finally {
      await server.kill();
      await Deno.remove(configDir, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cluster: a change made on one instance shows on every other, live and in history",
  ignore: !natsAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startCluster({ instances: 3, env: { CHAT_API_KEYS: KEY } });
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
      const said = await say(ann, "cluster typo");
      await bob.waitFor((frame) => frame.id === said.id, "the message on Bob's instance");
      send(ann, { type: "edit", id: said.id, text: "cluster text" });
      const edit = await bob.waitFor((frame) => frame.type === "edit", "the edit");
      assertEquals([edit.target, edit.text], [said.id, "cluster text"]);
      assertEquals((edit.seq as number) > (said.seq as number), true, "numbered after it");
      const { client: cid } = await cluster.v2(2, { type: "hello", name: "Cid" });
      const [history] = await historyOf(cid, 1);
      assertEquals([history.id, history.text, history.edited], [said.id, "cluster text", true]);

      // The server API removes a message of a room nobody is in on the instance it asks.
      send(ann, { type: "join", room: "games" });
      await ann.waitFor((frame) => frame.type === "members" && frame.room === "games", "games");
      const game = await say(ann, "in games");
      const response = await fetch(
        `${cluster.instances[1].httpUrl}/api/v1/rooms/games/messages/${game.id}`,
        { method: "DELETE", headers: { authorization: `Bearer ${KEY}` } },
      );
      assertEquals([response.status, await response.json()], [200, {
        ok: true,
        what: `message ${game.id} of Ann removed`,
      }]);
      const removal = await ann.waitFor((frame) => frame.type === "delete", "the API's removal");
      assertEquals([removal.target, removal.from], [game.id, "api"]);
    } finally {
      await cluster.dispose();
    }
  },
});

Deno.test({
  name:
    "cluster: changes made while a reader was away reach it once, after its author's instance died",
  ignore: !natsAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startCluster({ instances: 3 });
    try {
      const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
      const { client: bob, welcome } = await cluster.v2(1, { type: "hello", name: "Bob" });
      const typo = await say(ann, "a typo hree");
      const oops = await say(ann, "not for this room");
      await bob.waitFor((frame) => frame.id === oops.id, "the last message Bob reads");
      await bob.close();

      // While Bob is away, Ann changes both; then her instance is killed.
      send(ann, { type: "edit", id: typo.id, text: "a typo here" });
      const edit = await ann.waitFor((frame) => frame.type === "edit", "the edit");
      send(ann, { type: "delete", id: oops.id });
      const removal = await ann.waitFor((frame) => frame.type === "delete", "the removal");
      await cluster.instances[0].kill();

      // Bob resumes through a third instance, after the last message he read.
      const { client: back } = await cluster.v2(2, {
        type: "resume",
        name: "Bob",
        token: welcome.token,
        room: { name: "lobby", epoch: oops.epoch, seq: oops.seq },
      });
      // Everything it gets up to its own next message: the two changes, once each, in order.
      send(back, { type: "say", text: "back" });
      const got: V2Frame[] = [];
      await back.waitFor((frame) => {
        got.push(frame);
        return frame.type === "message" && frame.text === "back";
      }, "Bob's next message");
      const changes = got.filter((frame) => frame.type === "edit" || frame.type === "delete");
      assertEquals(changes.map(strip), [strip(edit), strip(removal)]);
    } finally {
      await cluster.dispose();
    }
  },
});
