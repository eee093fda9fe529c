/** Three server processes joined through a private nats-server behave as one chat. */

import { delay } from "@std/async/delay";
import { assert, assertEquals } from "@std/assert";
import { fromFileUrl, join } from "@std/path";
import { type Frame, TestClient, type V2Frame, within } from "./_client.ts";
import { natsAvailable, type NatsServer, startNats } from "./_nats.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

const TEST_CONFIG = fromFileUrl(new URL("../../config/test/", import.meta.url));
/** Seconds: short, so a killed instance is noticed quickly. */
const NAME_TTL = 2;

/** A config directory for instances of one cluster: the test environment, flood limits raised. */
async function clusterConfig(natsUrl: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "chat-cluster-" });
  await Deno.mkdir(join(dir, "test"));
  const chat = (await Deno.readTextFile(join(TEST_CONFIG, "chat.yaml")))
    .replace(/rate: \d+/, "rate: 10000")
    .replace(/burst: \d+/, "burst: 10000");
  await Deno.writeTextFile(join(dir, "test", "chat.yaml"), chat);
  const server = (await Deno.readTextFile(join(TEST_CONFIG, "server.yaml"))) +
    `cluster:\n  nats:\n    servers: ["${natsUrl}"]\n    name_ttl: ${NAME_TTL}\n    heartbeat: 0.5\n`;
  await Deno.writeTextFile(join(dir, "test", "server.yaml"), server);
  return dir;
}

function wsUrl(instance: ServerProcess, query = ""): string {
  return `${instance.httpUrl.replace(/^http/, "ws")}/ws${query}`;
}

/** A text-protocol client on `instance`, past its welcome and backlog. */
async function textClient(instance: ServerProcess, name: string): Promise<TestClient> {
  const client = await TestClient.connect(wsUrl(instance, `?name=${name}`));
  const welcome = await client.next();
  assertEquals(welcome.body.startsWith(`Welcome, ${name} `), true, welcome.body);
  return client;
}

/** Waits until `client` receives the frame with this body, skipping others. */
function expectBody(client: TestClient<Frame>, body: string, timeoutMs?: number): Promise<Frame> {
  return client.waitFor((frame) => frame.body === body, JSON.stringify(body), timeoutMs);
}

/** Asks `!who` until it lists `names`, in any order (other instances' news travels through NATS). */
async function whoShows(client: TestClient, names: string[]): Promise<void> {
  const expected = [...names].sort().join(", ");
  await within(
    (async () => {
      while (true) {
        client.send("!who");
        const frame = await client.waitFor((frame) => frame.body.startsWith("Connected Users: "));
        const listed = frame.body.slice("Connected Users: ".length).split(", ").sort().join(", ");
        if (listed === expected) return;
        await delay(50);
      }
    })(),
    `!who to list ${expected}`,
  );
}

Deno.test({
  name: "cluster: three instances behave as one chat",
  ignore: !natsAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const nats: NatsServer = await startNats();
    const configDir = await clusterConfig(nats.url);
    const env = { CHAT_CONFIG_DIR: configDir };
    const instances: ServerProcess[] = [];
    const clients: { close(): Promise<void> }[] = [];
    const open = <T extends { close(): Promise<void> }>(client: T): T => {
      clients.push(client);
      return client;
    };
    try {
      for (let i = 0; i < 3; i++) instances.push(await startServerProcess({ env }));
      const [a, b, c] = instances;

      const ann = open(await textClient(a, "Ann"));
      const bob = open(await textClient(b, "Bob"));
      const cat = open(await textClient(c, "Cat"));
      await whoShows(cat, ["Ann", "Bob", "Cat"]);

      await t.step("messages said on A reach B and C once each, in order", async () => {
        for (let i = 0; i < 20; i++) ann.send(`m${i}`);
        for (const [client, origin] of [[bob, "USER"], [cat, "USER"], [ann, "SELF"]] as const) {
          const seen: [string, string][] = [];
          while (seen.length < 20) {
            const frame = await client.waitFor((frame) => frame.body.startsWith("Ann: m"));
            seen.push([frame.origin, frame.body]);
          }
          assertEquals(seen, Array.from({ length: 20 }, (_, i) => [origin, `Ann: m${i}`]));
        }
        bob.send("marker");
        await expectBody(cat, "Bob: marker");
        assertEquals(cat.pending, []);
      });

      await t.step("a name taken on A is refused on B", async () => {
        bob.send("!setname ann");
        await expectBody(bob, 'Cannot change your name to "ann": it is taken');
        const other = await TestClient.connect(wsUrl(b, "?name=Ann"));
        const welcome = await other.next();
        await other.close();
        assert(!welcome.body.startsWith("Welcome, Ann "), welcome.body);
      });

      await t.step("private messages cross instances", async () => {
        cat.send("!pm ann across the cluster");
        await expectBody(ann, "PM <- Cat: across the cluster");
        await expectBody(cat, "PM -> Ann: across the cluster");
      });

      await t.step("a user joining on C gets the history written through A", async () => {
        ann.send("!join archive");
        ann.send("kept in the archive");
        await expectBody(ann, "Ann: kept in the archive");
        const dan = open(await textClient(c, "Dan"));
        dan.send("!join archive");
        await expectBody(dan, "You are now in archive with: Ann, Dan");
        const backlog = await dan.next();
        assertEquals([backlog.origin, backlog.body], ["HISTORY", "Ann: kept in the archive"]);
        dan.send("!rooms");
        const rooms = await dan.waitFor((frame) => frame.body.startsWith("Rooms: "));
        assert(rooms.body.includes("archive (2)"), rooms.body);
      });

      await t.step("a v2 session resumes on another instance without gaps or repeats", async () => {
        const first = await TestClient.connect<V2Frame>(wsUrl(a), "chat.v2");
        first.send(JSON.stringify({ type: "hello", name: "Eve" }));
        const welcome = await first.next();
        bob.send("before the drop");
        const seen = await first.waitFor((frame) => frame.text === "before the drop");
        await first.close();
        // The session lingers on its instance: nobody sees Eve leave.
        bob.send("while away");
        await expectBody(bob, "Bob: while away");
        bob.send("!pm Eve sent while you were away");
        await expectBody(bob, "PM -> Eve: sent while you were away");
        const again = open(await TestClient.connect<V2Frame>(wsUrl(c), "chat.v2"));
        again.send(JSON.stringify({
          type: "resume",
          name: "Eve",
          token: welcome.token,
          room: { name: "lobby", epoch: welcome.epoch, seq: seen.seq },
        }));
        assertEquals((await again.next()).name, "Eve");
        assertEquals((await again.next()).type, "members");
        const missed = await again.next();
        assertEquals([missed.type, missed.text], ["history", "while away"]);
        const kept = await again.next();
        assertEquals([kept.type, kept.text], ["private", "sent while you were away"]);
        assertEquals(bob.pending.filter((frame) => /Eve has/.test(frame.body)), []);
        bob.send("live again");
        const live = await again.next();
        assertEquals([live.type, live.text], ["message", "live again"]);
        // Numbered by the stream: increasing within a room, with gaps where other events went.
        assert((live.seq as number) > (missed.seq as number));
      });

      await t.step("kill -9 of an instance releases its names with leave notices", async () => {
        const started = performance.now();
        b.child.kill("SIGKILL");
        await b.child.status;
        await expectBody(cat, "Bob has disconnected!");
        assert(performance.now() - started < (NAME_TTL + 3) * 1000, "leave notice too late");
        await whoShows(cat, ["Cat", "Eve"]);
        cat.send("!setname Bob");
        await expectBody(cat, '"Cat" has changed their name to "Bob"');
        cat.send("marker after the kill");
        await expectBody(cat, "Bob: marker after the kill");
        assertEquals(cat.pending.filter((frame) => frame.body === "Bob has disconnected!"), []);
      });

      await t.step(
        "NATS going away degrades, and nothing said after it returns is lost",
        async () => {
          await nats.stop();
          await expectBody(
            ann,
            "The chat is degraded: the link to the other servers is down. Your messages will go out when it is back.",
          );
          await nats.start();
          await expectBody(ann, "The link to the other servers is back.");
          await expectBody(cat, "The link to the other servers is back.");
          cat.send("!join archive");
          await expectBody(ann, "Bob has joined archive");
          for (let i = 0; i < 5; i++) cat.send(`after ${i}`);
          for (let i = 0; i < 5; i++) await expectBody(ann, `Bob: after ${i}`);
        },
      );
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      await Promise.allSettled(instances.map((instance) => instance.kill()));
      await nats.dispose();
      await Deno.remove(configDir, { recursive: true });
    }
  },
});
