/**
 * Token mode: private conversations are kept in each account's inbox,
 * through a restart with the history store, and across instances of a
 * cluster (the account reconnecting on another instance reads them there).
 */

import { assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { join } from "@std/path";
import { SignJWT } from "jose";
import { TestClient, type V2Frame } from "./_client.ts";
import { type Cluster, startCluster, wsUrl } from "./_cluster.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable } from "./_nats.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

const SECRET = "an-inbox-test-secret-of-at-least-32-characters";
const TOKEN_MODE = { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: SECRET };

function tokenFor(name: string): Promise<string> {
  return new SignJWT({ sub: name }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

/** A v2 client signed in as `name` on `instance`, past its welcome. */
async function signIn(instance: ServerProcess, name: string, privates?: unknown) {
  const client = await TestClient.connect<V2Frame>(wsUrl(instance), "chat.v2");
  const auth = await tokenFor(name);
  client.send(JSON.stringify(
    privates === undefined
      ? { type: "hello", auth }
      : { type: "resume", name, auth, room: { name: "lobby", seq: 0 }, privates },
  ));
  await client.waitFor((frame) => frame.type === "welcome", `${name}'s welcome`);
  return client;
}

/**
 * Signs `name` in on `instance` once the cluster has let go of the name: an
 * instance that has not yet seen the name's dead holder go refuses it (4001).
 */
async function signInOnceFree(instance: ServerProcess, name: string) {
  for (let attempt = 1;; attempt++) {
    try {
      return await signIn(instance, name);
    } catch (error) {
      if (attempt === 10) throw error;
      await delay(300);
    }
  }
}

/** The next `count` private events `client` receives. */
async function privateFrames(client: TestClient<V2Frame>, count: number): Promise<V2Frame[]> {
  const frames: V2Frame[] = [];
  while (frames.length < count) {
    frames.push(await client.waitFor((frame) => frame.type === "private", "a private message"));
  }
  return frames;
}

/** The next `count` private events `client` receives, as `[from, to, text, history]`. */
async function privates(client: TestClient<V2Frame>, count: number) {
  return (await privateFrames(client, count)).map((frame) => [
    frame.from,
    frame.to,
    frame.text,
    frame.history ?? false,
  ]);
}

const pm = (client: TestClient<V2Frame>, to: string, text: string) =>
  client.send(JSON.stringify({ type: "pm", to, text }));

Deno.test("private conversations outlive a restart with the history store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-inbox-" });
  const configDir = await testConfigDir({
    floodOff: true,
    server: `history:\n  store: kv\n  path: ${join(dir, "history.kv")}\n`,
  });
  const env = { CHAT_CONFIG_DIR: configDir, ...TOKEN_MODE };
  let server = await startServerProcess({ env });
  try {
    const ann = await signIn(server, "Ann");
    const bob = await signIn(server, "Bob");
    pm(ann, "Bob", "psst");
    assertEquals(await privates(bob, 1), [["Ann", "Bob", "psst", false]]);
    pm(bob, "Ann", "what?");
    const [first, second] = await privateFrames(ann, 2);
    assertEquals([first.text, second.text, second.seq], ["psst", "what?", 2]);
    await Promise.all([ann.close(), bob.close()]);
    await server.kill();
    server = await startServerProcess({ env });
    const again = await signIn(server, "Bob");
    assertEquals(await privates(again, 2), [
      ["Ann", "Bob", "psst", true],
      ["Bob", "Ann", "what?", true],
    ]);
    // A resume from the first message on brings only what came after it, as news.
    const resumed = await signIn(server, "Ann", { epoch: first.epoch, seq: first.seq });
    assertEquals(await privates(resumed, 1), [["Bob", "Ann", "what?", false]]);
    await Promise.all([again.close(), resumed.close()]);
  } finally {
    await server.kill();
    await Deno.remove(configDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "cluster: a conversation follows its accounts to other instances",
  ignore: !natsAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster: Cluster = await startCluster({ instances: 3, env: TOKEN_MODE });
    const [a, b, c] = cluster.instances;
    try {
      const ann = await signIn(a, "Ann");
      const bob = await signIn(b, "Bob");
      pm(ann, "Bob", "across");
      assertEquals(await privates(bob, 1), [["Ann", "Bob", "across", false]]);
      pm(bob, "Ann", "back");
      const [, back] = await privates(ann, 2);
      assertEquals(back, ["Bob", "Ann", "back", false]);

      // Bob closes, then signs in through the third instance: the lingering session moves there,
      // with its inbox. (A live one would stay, the new device relayed to it.)
      await bob.close();
      const moved = await signIn(c, "Bob");
      assertEquals(await privates(moved, 2), [
        ["Ann", "Bob", "across", true],
        ["Bob", "Ann", "back", true],
      ]);
      pm(ann, "Bob", "still there?");
      const [live] = await privates(moved, 1);
      assertEquals(live, ["Ann", "Bob", "still there?", false]);

      // NATS goes away for a moment: what Bob sends meanwhile goes out when it is back.
      await cluster.nats.stop("SIGKILL");
      pm(moved, "Ann", "during the outage");
      await cluster.nats.start();
      const late = await ann.waitFor((frame) => frame.text === "during the outage", "the late one");
      assertEquals([late.type, late.from, late.history], ["private", "Bob", undefined]);

      // Ann's instance dies just after Bob writes to her: her inbox has it, wherever she returns.
      await a.kill();
      pm(moved, "Ann", "while your server was down");
      await moved.waitFor((frame) => frame.text === "while your server was down", "Bob's copy");
      // Once every instance has seen Ann's instance go, her name is free to sign in with elsewhere.
      await moved.waitFor(
        (frame) => frame.type === "presence" && frame.action === "leave" && frame.from === "Ann",
        "Ann's leaving",
      );
      const returned = await signInOnceFree(b, "Ann");
      const replayed = await privates(returned, 4);
      assertEquals(replayed.map(([, , text]) => text), [
        "across",
        "back",
        "still there?",
        "during the outage",
      ]);
      assertEquals(await privates(returned, 1), [
        ["Bob", "Ann", "while your server was down", true],
      ]);
      await Promise.all([moved.close(), returned.close()]);
    } finally {
      await cluster.dispose();
    }
  },
});
