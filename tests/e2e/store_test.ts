/**
 * The history store read back after a bad day: a file whose records are
 * damaged stops the start with one line naming the key and the fix (or is
 * repaired with --repair), and a file whose room record fell behind its
 * stored messages continues after them instead of numbering them again.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { startServerProcess } from "./_process.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const LIFE = "0a0b0c0d";

/** A stored message of the lobby, numbered `seq`. */
function note(seq: number, room = "lobby") {
  return {
    kind: "message",
    room,
    id: `old.${seq}`,
    sentAt: 1_700_000_000_000 + seq,
    author: { instance: "old", userId: 1, name: "Ann" },
    text: `message ${seq}`,
    emote: false,
  };
}

/** A store whose lobby holds messages 1 to `last`, its record saying `recorded`. */
async function lobbyStore(kv: Deno.Kv, recorded: number, last: number): Promise<void> {
  await kv.set(["room", "lobby"], { name: "lobby", life: LIFE, epoch: LIFE, lastSeq: recorded });
  const notes = Array.from({ length: last }, (_, i) => note(i + 1));
  await kv.set(["msg", "lobby", LIFE, 1], { first: 1, notes: notes.slice(0, recorded) });
  if (last > recorded) {
    await kv.set(["msg", "lobby", LIFE, recorded + 1], {
      first: recorded + 1,
      notes: notes.slice(recorded),
    });
  }
}

/** Runs `body` with a store made by `make` and a config folder pointing at it. */
async function withStore(
  make: (kv: Deno.Kv) => Promise<void>,
  body: (path: string, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat-store-" });
  const path = join(dir, "history.kv");
  const kv = await Deno.openKv(path);
  await make(kv);
  kv.close();
  const configDir = await testConfigDir({
    floodOff: true,
    chat: { history_size: "100" },
    server: `history:\n  store: kv\n  path: ${path}\n`,
  });
  try {
    await body(path, { CHAT_CONFIG_DIR: configDir });
  } finally {
    await Deno.remove(configDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs the server, which must stop by itself: its status and stderr. One
 * that listens instead is stopped, and its status is then `"listening"`.
 */
async function startToEnd(env: Record<string, string>, args: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "--unstable-kv", "src/main.ts", ...args],
    cwd: ROOT,
    env: { ...env, CHAT_ENV: "test", CHAT_PORT: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stdout = "";
  const listening = (async () => {
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk);
      if (stdout.includes("listening on")) child.kill("SIGKILL");
    }
  })();
  const stderr = (async () => {
    let text = "";
    for await (const chunk of child.stderr) text += decoder.decode(chunk);
    return text;
  })();
  const status = await within(child.status, "the server to stop", 20_000);
  await listening;
  return {
    code: stdout.includes("listening on") ? "listening" : status.code,
    stderr: await stderr,
  };
}

const DAMAGES: [string, (kv: Deno.Kv) => Promise<void>, string][] = [
  ["a room record that is a string", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["room", "lobby"], "junk");
  }, '["room","lobby"]'],
  ["a room record with a name that is a number", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["room", "lobby"], { name: 5, life: LIFE, epoch: LIFE, lastSeq: 3 });
  }, '["room","lobby"]'],
  ["a room record with a negative seq", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["room", "lobby"], { name: "lobby", life: LIFE, epoch: LIFE, lastSeq: -1 });
  }, '["room","lobby"]'],
  ["a page that is a string", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["msg", "lobby", LIFE, 1], "junk");
  }, `["msg","lobby","${LIFE}",1]`],
  ["a page holding a message without text", async (kv) => {
    await lobbyStore(kv, 3, 3);
    const { text: _, ...broken } = note(2);
    await kv.set(["msg", "lobby", LIFE, 1], { first: 1, notes: [note(1), broken, note(3)] });
  }, `["msg","lobby","${LIFE}",1]`],
  ["a page whose messages are not UTF-8", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["msg", "lobby", LIFE, 1], {
      first: 1,
      notes: new Uint8Array([0x5b, 0xff, 0x5d]),
    });
  }, `["msg","lobby","${LIFE}",1]`],
  ["a page whose JSON holds a message without text", async (kv) => {
    await lobbyStore(kv, 3, 3);
    const { text: _, ...broken } = note(2);
    const notes = new TextEncoder().encode(JSON.stringify([note(1), broken, note(3)]));
    await kv.set(["msg", "lobby", LIFE, 1], { first: 1, notes });
  }, `["msg","lobby","${LIFE}",1]`],
  ["a page filed under a seq it does not start at", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["msg", "lobby", LIFE, 1], { first: 2, notes: [note(2), note(3)] });
  }, `["msg","lobby","${LIFE}",1]`],
  ["a message filed under another room's record", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["msg", "lobby", LIFE, 4], { first: 4, notes: [note(4, "games")] });
  }, `["msg","lobby","${LIFE}",4]`],
  ["a moderation record that is a string", async (kv) => {
    await lobbyStore(kv, 3, 3);
    await kv.set(["mod", "ban:name:mallory"], "junk");
  }, '["mod","ban:name:mallory"]'],
];

Deno.test("a damaged store stops the start with one line and exit 2, or is repaired", async (t) => {
  for (const [what, make, key] of DAMAGES) {
    await t.step(what, async () => {
      await withStore(make, async (path, env) => {
        const { code, stderr } = await startToEnd(env);
        assertEquals(code, 2, stderr);
        const lines = stderr.trimEnd().split("\n");
        assertEquals(lines.length, 1, stderr);
        assertStringIncludes(lines[0], `Cannot start server as "history.path" in `);
        assertStringIncludes(lines[0], JSON.stringify(path));
        assertStringIncludes(lines[0], key);
        assertStringIncludes(lines[0], "--repair");
      });
    });
  }

  await t.step("--repair keeps what is readable and says what it dropped", async () => {
    const [, make, key] = DAMAGES[4];
    await withStore(make, async (_path, env) => {
      const server = await startServerProcess({ env, args: ["--repair"] });
      try {
        assert(server.output.some((line) => line.includes(key)), server.output.join("\n"));
        const client = await TestClient.connect<V2Frame>(
          server.httpUrl.replace("http", "ws") + "/ws",
          "chat.v2",
        );
        client.send(JSON.stringify({ type: "hello" }));
        await client.waitFor((event) => event.type === "welcome");
        client.send(JSON.stringify({ type: "say", text: "after the repair" }));
        const said = await client.waitFor((event) => event.type === "message");
        // The dropped page held seqs 1 to 3: they are not given again.
        assertEquals(said.seq, 4);
        await client.close();
      } finally {
        await server.kill();
      }
      // Repaired once, the file starts as it is.
      await (await startServerProcess({ env })).kill();
    });
  });
});

Deno.test("a room record behind its stored messages: the log goes on after them", async () => {
  await withStore((kv) => lobbyStore(kv, 10, 15), async (_path, env) => {
    const server = await startServerProcess({ env });
    try {
      const client = await TestClient.connect<V2Frame>(
        server.httpUrl.replace("http", "ws") + "/ws",
        "chat.v2",
      );
      client.send(JSON.stringify({ type: "hello" }));
      await client.waitFor((event) => event.type === "welcome");
      const backlog: V2Frame[] = [];
      for (let seq = 1; seq <= 15; seq++) {
        backlog.push(await client.waitFor((event) => event.type === "history"));
      }
      assertEquals(backlog.map((event) => event.seq), Array.from({ length: 15 }, (_, i) => i + 1));
      for (let index = 0; index < 8; index++) {
        client.send(JSON.stringify({ type: "say", text: `new ${index}` }));
      }
      const said: V2Frame[] = [];
      while (said.length < 8) said.push(await client.waitFor((event) => event.type === "message"));
      assertEquals(
        said.map((event) => [event.seq, event.text]),
        [16, 17, 18, 19, 20, 21, 22, 23]
          .map((seq, index) => [seq, `new ${index}`]),
      );
      await client.close();
    } finally {
      await server.kill();
    }
  });
});
