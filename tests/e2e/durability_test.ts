/**
 * Nothing accepted is lost: with `history.store: kv`, every message a client
 * saw is in the history after a restart, kill -9 included, once and in
 * order, and no id or seq is given twice; a resume never skips silently.
 */

import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { TestClient, type V2Frame, within } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";
import { canMountTmpfs, fill, mountTmpfs, unmount } from "./_tmpfs.ts";

/** A v2 client past its welcome, on `server`. */
async function v2Client(
  server: ServerProcess,
  name: string,
  first: Record<string, unknown> = { type: "hello", name },
): Promise<{ client: TestClient<V2Frame>; welcome: V2Frame }> {
  const url = `${server.httpUrl.replace(/^http/, "ws")}/ws`;
  const client = await TestClient.connect<V2Frame>(url, "chat.v2");
  client.send(JSON.stringify(first));
  const welcome = await client.waitFor((frame) => frame.type === "welcome", "the welcome");
  return { client, welcome };
}

/** Says each text, in frames of 200 requests. */
function burst(client: TestClient<V2Frame>, texts: readonly string[]): void {
  for (let start = 0; start < texts.length; start += 200) {
    const frame = texts.slice(start, start + 200).map((text) => ({ type: "say", text }));
    client.send(JSON.stringify(frame));
  }
}

/** Says each text, a thousand at a time, waiting for each thousand's echo (a slow reader is cut off). */
async function paced(client: TestClient<V2Frame>, texts: readonly string[]): Promise<void> {
  for (let start = 0; start < texts.length; start += 1000) {
    const part = texts.slice(start, start + 1000);
    burst(client, part);
    await client.waitFor((frame) => frame.text === part.at(-1), `the echo of ${part.at(-1)}`);
  }
}

/** Every frame a client receives until its socket closes. */
async function untilClosed(client: TestClient<V2Frame>): Promise<V2Frame[]> {
  const frames: V2Frame[] = [];
  while (true) {
    try {
      frames.push(await client.next());
    } catch {
      return frames;
    }
  }
}

/** What a history or message frame is: its text, seq and id. */
const entry = (frame: V2Frame) => [frame.text, frame.seq, frame.id] as const;

/** The history a newcomer gets after its welcome, read until `count` entries or a pause. */
async function backlogOf(client: TestClient<V2Frame>, count: number): Promise<V2Frame[]> {
  const history: V2Frame[] = [];
  while (history.length < count) {
    const frame = await client.next();
    if (frame.type === "history") history.push(frame);
  }
  return history;
}

const texts = (count: number, prefix = "m") => Array.from({ length: count }, (_, i) => prefix + i);

/** Runs `body` with a kv-backed config folder, removed afterwards. */
async function withKvConfig(
  chat: Record<string, string>,
  body: (env: Record<string, string>, configDir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat-durable-" });
  const configDir = await testConfigDir({
    floodOff: true,
    chat,
    server: `history:\n  store: kv\n  path: ${join(dir, "history.kv")}\n`,
  });
  try {
    await body({ CHAT_CONFIG_DIR: configDir }, configDir);
  } finally {
    await Deno.remove(configDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "kill -9 mid-burst: every message a client saw is kept, once, in order; no reuse",
  sanitizeResources: false,
  async fn() {
    await withKvConfig({ history_size: "6000" }, async (env) => {
      let server = await startServerProcess({ env });
      const extra: TestClient<V2Frame>[] = [];
      try {
        const { client: sender } = await v2Client(server, "Sender");
        const { client: watcher, welcome } = await v2Client(server, "Watcher");
        extra.push(sender, watcher);
        burst(sender, texts(4000));
        // Kill once the watcher has seen a good part of the burst, while the rest is in flight.
        await watcher.waitFor((frame) => frame.text === "m1200", "the 1201st message", 20_000);
        server.child.kill("SIGKILL");
        const seen = [await Promise.resolve(), ...await untilClosed(watcher)].filter(
          (frame): frame is V2Frame => frame?.type === "message",
        );
        assert(seen.length > 0);
        await server.child.status;

        server = await startServerProcess({ env });
        const { client: reader, welcome: again } = await v2Client(server, "Reader");
        extra.push(reader);
        assertEquals(again.epoch, welcome.epoch, "a kill of a healthy store keeps the epoch");
        const lastSeen = seen.at(-1)!;
        const kept = await backlogOf(reader, lastSeen.seq as number);
        const keptEntries = kept.map(entry);
        // Everything seen is kept, in the order seen, with the same seq and id.
        const start = keptEntries.findIndex(([text]) => text === seen[0].text);
        assertEquals(keptEntries.slice(start, start + seen.length), seen.map(entry));
        assertEquals(new Set(kept.map((frame) => frame.id)).size, kept.length);

        // New messages get new numbers and ids.
        burst(reader, texts(20, "after"));
        const fresh: V2Frame[] = [];
        while (fresh.length < 20) {
          const frame = await reader.next();
          if (frame.type === "message") fresh.push(frame);
        }
        const lastKept = kept.at(-1)!.seq as number;
        assert(fresh.every((frame) => (frame.seq as number) > lastKept), "a seq was reused");
        const ids = new Set(kept.map((frame) => frame.id));
        assert(fresh.every((frame) => !ids.has(frame.id)), "an id was reused");

        // The watcher's position resumes exactly: what it missed, no gap.
        const { client: back } = await v2Client(server, "Watcher", {
          type: "resume",
          name: "Watcher",
          token: "from the old life",
          room: { name: "lobby", epoch: welcome.epoch, seq: lastSeen.seq },
        });
        extra.push(back);
        const next = await back.waitFor((frame) =>
          frame.type === "history" || frame.type === "gap"
        );
        assertEquals(next.type, "history");
        assertEquals(next.seq, (lastSeen.seq as number) + 1);
      } finally {
        await Promise.all(extra.map((client) => client.close()));
        await server.kill();
      }
    });
  },
});

Deno.test({
  name: "SIGTERM right after a burst: the process waits for the writes and exits 0",
  sanitizeResources: false,
  async fn() {
    await withKvConfig({ history_size: "5000" }, async (env) => {
      let server = await startServerProcess({ env });
      const extra: TestClient<V2Frame>[] = [];
      try {
        const { client: sender } = await v2Client(server, "Sender");
        extra.push(sender);
        burst(sender, texts(3000));
        await sender.waitFor((frame) => frame.text === "m2999", "the last echo", 20_000);
        const started = performance.now();
        server.child.kill("SIGTERM");
        assertEquals((await within(server.child.status, "the exit", 3000)).code, 0);
        assert(performance.now() - started < 3000);

        server = await startServerProcess({ env });
        const { client: reader } = await v2Client(server, "Reader");
        extra.push(reader);
        const kept = await backlogOf(reader, 3000);
        assertEquals(kept.map((frame) => frame.text), texts(3000));
        assertEquals(kept.map((frame) => frame.seq), texts(3000).map((_, i) => i + 1));
      } finally {
        await Promise.all(extra.map((client) => client.close()));
        await server.kill();
      }
    });
  },
});

/** Sets `room_idle_ttl` back to an hour for the next start. */
async function keepIdleRooms(configDir: string): Promise<void> {
  const path = join(configDir, "test", "chat.yaml");
  const chat = await Deno.readTextFile(path);
  await Deno.writeTextFile(path, chat.replace(/^room_idle_ttl: .*$/m, "room_idle_ttl: 3600"));
}

/** Asks for the rooms until `done` holds for the listing. */
async function roomsUntil(
  client: TestClient<V2Frame>,
  done: (names: string[]) => boolean,
): Promise<void> {
  await within(
    (async () => {
      while (true) {
        client.send(JSON.stringify({ type: "rooms" }));
        const frame = await client.waitFor((frame) => frame.type === "rooms");
        const names = (frame.rooms as { name: string }[]).map((room) => room.name);
        if (done(names)) return;
      }
    })(),
    "the room listing",
    10_000,
  );
}

Deno.test({
  name: "a room removed when idle and created again keeps only, and all, its new history",
  sanitizeResources: false,
  async fn() {
    await withKvConfig({ history_size: "4000", room_idle_ttl: "1" }, async (env, configDir) => {
      let server = await startServerProcess({ env });
      const extra: TestClient<V2Frame>[] = [];
      try {
        const { client: ann } = await v2Client(server, "Ann");
        const { client: bob } = await v2Client(server, "Bob");
        extra.push(ann, bob);
        ann.send(JSON.stringify({ type: "join", room: "r" }));
        const old = await ann.waitFor((frame) => frame.type === "members" && frame.room === "r");
        await paced(ann, texts(3000, "old"));
        ann.send(JSON.stringify({ type: "leave" }));
        await roomsUntil(bob, (names) => !names.includes("r"));
        ann.send(JSON.stringify({ type: "join", room: "r" }));
        const renewed = await ann.waitFor((frame) =>
          frame.type === "members" && frame.room === "r"
        );
        assertNotEquals(renewed.epoch, old.epoch);
        burst(ann, texts(300, "new"));
        await ann.waitFor((frame) => frame.text === "new299", "the new burst", 20_000);
        server.child.kill("SIGTERM");
        assertEquals((await server.child.status).code, 0);

        // Rooms restored at start are idle: keep them long enough to look.
        await keepIdleRooms(configDir);
        server = await startServerProcess({ env });
        const { client: cat } = await v2Client(server, "Cat");
        extra.push(cat);
        cat.send(JSON.stringify({ type: "join", room: "r" }));
        const members = await cat.waitFor((frame) => frame.type === "members");
        assertEquals(members.epoch, renewed.epoch);
        const kept = await backlogOf(cat, 300);
        assertEquals(
          kept.map((frame) => [frame.text, frame.seq]),
          texts(300, "new").map((
            text,
            i,
          ) => [text, i + 1]),
        );
        cat.send(JSON.stringify({ type: "history" }));
        assertEquals((await backlogOf(cat, 300)).length, 300);
      } finally {
        await Promise.all(extra.map((client) => client.close()));
        await server.kill();
      }
    });
  },
});

Deno.test({
  name: "SIGTERM during a room's removal exits 0, and the removed messages never come back",
  sanitizeResources: false,
  async fn() {
    await withKvConfig({ history_size: "20000", room_idle_ttl: "1" }, async (env, configDir) => {
      let server = await startServerProcess({ env });
      const extra: TestClient<V2Frame>[] = [];
      try {
        const { client: ann } = await v2Client(server, "Ann");
        const { client: bob } = await v2Client(server, "Bob");
        extra.push(ann, bob);
        ann.send(JSON.stringify({ type: "join", room: "big" }));
        await paced(ann, texts(20000, "gone"));
        ann.send(JSON.stringify({ type: "leave" }));
        await roomsUntil(bob, (names) => !names.includes("big"));
        server.child.kill("SIGTERM");
        assertEquals((await within(server.child.status, "the exit", 3000)).code, 0);

        await keepIdleRooms(configDir);
        server = await startServerProcess({ env });
        const { client: cat } = await v2Client(server, "Cat");
        extra.push(cat);
        await roomsUntil(cat, (names) => !names.includes("big"));
        cat.send(JSON.stringify({ type: "join", room: "big" }));
        await cat.waitFor((frame) => frame.type === "members");
        cat.send(JSON.stringify({ type: "history" }));
        const answer = await cat.waitFor((frame) => frame.type === "system");
        assertEquals(answer.text, "No messages in big yet");
      } finally {
        await Promise.all(extra.map((client) => client.close()));
        await server.kill();
      }
    });
  },
});

Deno.test({
  name: "without a store, a resume after a restart gets a gap notice, then the whole backlog",
  sanitizeResources: false,
  async fn() {
    const configDir = await testConfigDir({ floodOff: true });
    const env = { CHAT_CONFIG_DIR: configDir };
    let server = await startServerProcess({ env });
    const extra: TestClient<V2Frame>[] = [];
    try {
      const { client: ann, welcome } = await v2Client(server, "Ann");
      extra.push(ann);
      burst(ann, texts(12, "before"));
      const twelfth = await ann.waitFor((frame) => frame.text === "before11");
      server.child.kill("SIGTERM");
      await server.child.status;

      server = await startServerProcess({ env });
      const { client: bob } = await v2Client(server, "Bob");
      extra.push(bob);
      burst(bob, texts(20, "after"));
      await bob.waitFor((frame) => frame.text === "after19");
      const { client: back } = await v2Client(server, "Ann", {
        type: "resume",
        name: "Ann",
        token: welcome.token,
        room: { name: "lobby", epoch: welcome.epoch, seq: twelfth.seq },
      });
      extra.push(back);
      const gap = await back.waitFor((frame) => frame.type === "gap" || frame.type === "history");
      assertEquals([gap.type, gap.reason, gap.room], ["gap", "epoch", "lobby"]);
      assertStringIncludes(gap.text as string, "lobby");
      const kept = await backlogOf(back, 20);
      assertEquals(kept.map((frame) => frame.text), texts(20, "after"));
    } finally {
      await Promise.all(extra.map((client) => client.close()));
      await server.kill();
      await Deno.remove(configDir, { recursive: true });
    }
  },
});

Deno.test("a history.path that cannot be a store stops the start with one line, exit 2", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "chat-badpath-" });
  try {
    const corrupt = join(dir, "corrupt.kv");
    await Deno.writeTextFile(corrupt, "this is not a database, just words ".repeat(100));
    const cases: [string, string][] = [
      ["a folder", dir],
      ["a damaged file", corrupt],
      ["an impossible place", "/proc/self/no/such/history.kv"],
    ];
    for (const [what, path] of cases) {
      await t.step(what, async () => {
        const configDir = await testConfigDir({
          server: `history:\n  store: kv\n  path: ${path}\n`,
        });
        try {
          const output = await new Deno.Command(Deno.execPath(), {
            args: ["run", "--quiet", "-A", "--unstable-kv", "src/main.ts"],
            cwd: join(import.meta.dirname!, "..", ".."),
            env: { CHAT_CONFIG_DIR: configDir, CHAT_ENV: "test", NO_COLOR: "1" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const stderr = new TextDecoder().decode(output.stderr);
          assertEquals(output.code, 2, stderr);
          const lines = stderr.trimEnd().split("\n");
          assertEquals(lines.length, 1, stderr);
          assertStringIncludes(lines[0], `Cannot start server as "history.path" in `);
          assertStringIncludes(lines[0], JSON.stringify(path));
        } finally {
          await Deno.remove(configDir, { recursive: true });
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a full disk: the chat goes on from memory, says so, counts it, and recovers",
  ignore: !canMountTmpfs("the full-disk test"),
  sanitizeResources: false,
  async fn() {
    const disk = await Deno.makeTempDir({ prefix: "chat-full-" });
    await mountTmpfs(disk, "1m");
    const configDir = await testConfigDir({
      floodOff: true,
      chat: { history_size: "5000", room_idle_ttl: "1" },
      server: `history:\n  store: kv\n  path: ${join(disk, "history.kv")}\n`,
    });
    const env = { CHAT_CONFIG_DIR: configDir };
    let server = await startServerProcess({ env });
    const extra: TestClient<V2Frame>[] = [];
    try {
      const { client: ann, welcome } = await v2Client(server, "Ann");
      extra.push(ann);
      await paced(ann, texts(50, "saved"));
      await fill(join(disk, "filler"));

      burst(ann, texts(20, "unsaved"));
      const notice = await ann.waitFor((frame) => frame.type === "system", "the notice");
      assertEquals(
        notice.text,
        "Room history cannot be saved right now: messages still reach everyone, but a restart would lose them.",
      );
      await ann.waitFor((frame) => frame.text === "unsaved19", "the messages, from memory");
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      assert(/chat_history_write_failures_total [1-9]/.test(metrics), metrics);
      assert(/chat_history_unsaved_messages_total [1-9]/.test(metrics), metrics);

      // A room removal on a full disk is survived too.
      ann.send(JSON.stringify({ type: "join", room: "brief" }));
      ann.send(JSON.stringify({ type: "say", text: "in brief" }));
      await ann.waitFor((frame) => frame.text === "in brief");
      ann.send(JSON.stringify({ type: "leave" }));
      await roomsUntil(ann, (names) => !names.includes("brief"));

      await Deno.remove(join(disk, "filler"));
      ann.send(JSON.stringify({ type: "say", text: "saved again" }));
      const back = await ann.waitFor((frame) => frame.type === "system", "the recovery");
      assertEquals(back.text, "Room history is being saved again.");
      await ann.waitFor((frame) => frame.text === "saved again");
      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0);

      server = await startServerProcess({ env });
      const { client: reader } = await v2Client(server, "Reader");
      extra.push(reader);
      const kept = await backlogOf(reader, 51);
      assertEquals(kept.map((frame) => frame.text), [...texts(50, "saved"), "saved again"]);
      // A position from before the loss cannot resume exactly: the epoch changed.
      const { client: returning } = await v2Client(server, "Ann", {
        type: "resume",
        name: "Ann",
        token: welcome.token,
        room: { name: "lobby", epoch: welcome.epoch, seq: 50 },
      });
      extra.push(returning);
      const gap = await returning.waitFor((frame) =>
        frame.type === "gap" || frame.type === "history"
      );
      assertEquals(gap.type, "gap");
    } finally {
      await Promise.all(extra.map((client) => client.close()));
      await server.kill();
      await unmount(disk);
      await Deno.remove(disk, { recursive: true });
      await Deno.remove(configDir, { recursive: true });
    }
  },
});
