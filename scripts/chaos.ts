/**
 * Chaos for the history store: the real server with `history.store: kv`,
 * writers bursting long messages into several rooms, readers recording what
 * they receive and resuming from their last position, and the server killed
 * (SIGKILL, or SIGTERM) at seeded random instants and started again on the
 * same file, again and again. Then the invariants, from the clients' records
 * and the final history:
 *
 * - the history holds each id once, seqs only growing;
 * - every message a client received is in it, with the seq it was received
 *   with, and no seq was received for two different messages;
 * - every message a writer saw echoed is in it once;
 * - every message in it was received by its room's reader (nothing stored
 *   that nobody could read), and was sent by a writer;
 * - once the crashes are over, every writer gets back each message it sends.
 *
 * With `full` (root only: it mounts a tmpfs), some lives also fill the disk
 * mid-burst and free it again: messages received between the notice that
 * history is not being saved and the notice that it is again may be lost by
 * the next crash (users were told), and nothing else may.
 *
 * `deno task chaos [--runs 20] [--kills 8] [--seconds 1.5] [--seed 1] [--term] [--full]`
 * runs as long as asked; `tests/e2e/chaos_test.ts` runs a short schedule.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { join } from "@std/path";
import { TestClient, type V2Frame, within } from "../tests/e2e/_client.ts";
import { testConfigDir } from "../tests/e2e/_config.ts";
import { type ServerProcess, startServerProcess } from "../tests/e2e/_process.ts";
import { fill, mountTmpfs, unmount } from "../tests/e2e/_tmpfs.ts";
import { seededRandom } from "../tests/_random.ts";

/** One schedule of kills. */
export interface ChaosOptions {
  /** Kills before the last start. */
  readonly kills: number;
  /** Seeds the instants of the kills and the signals. */
  readonly seed: number;
  /** The longest burst before a kill, in seconds (the shortest is 0.3). */
  readonly seconds: number;
  /** Rooms, each with a writer and a reader. */
  readonly rooms: number;
  /** Also stop the server with SIGTERM, at random, instead of SIGKILL. */
  readonly term: boolean;
  /** Also fill the disk mid-burst, at random, and free it (needs root, to mount a tmpfs). */
  readonly full?: boolean;
  /** Told what happens, when given. */
  readonly log?: (line: string) => void;
}

/** What a schedule did, and every invariant it found broken. */
export interface ChaosReport {
  readonly seed: number;
  readonly kills: number;
  readonly sent: number;
  readonly stored: number;
  /** Lives in which the disk filled up. */
  readonly fills: number;
  readonly problems: string[];
}

/** Messages a writer sends in one frame, and how long each is... */
const BATCH = 40;
const TEXT_LENGTH = 1400;
/** ...frames it sends at once, and milliseconds between those: enough that writes queue up. */
const FRAMES = 4;
const WRITE_EVERY_MS = 20;
const API_KEY = "chaos-api-key-of-sixteen-chars";
/** Messages each writer sends once the crashes are over, each to come back to it. */
const CLEAN_ROUND = 20;
/** The notices of the server when its store fails and recovers (`messages.ts`). */
const UNSAVED = /^Room history cannot be saved right now/;
const SAVED = /^Room history is being saved again/;

/** A message as a client recorded it. */
interface Seen {
  readonly id: string;
  readonly seq: number;
  readonly epoch: string;
  readonly text: string;
}

/** A client that keeps what it receives across the server's lives. */
class Recorder {
  readonly name: string;
  readonly room: string;
  /** Messages and history, by id, as first received. */
  readonly seen = new Map<string, Seen>();
  /** Ids received while the server said history was not being saved: a crash may lose those. */
  readonly unsaved = new Set<string>();
  /** Whether the server says, now, that history is not being saved. */
  failing = false;
  /** Where it stopped: the epoch and the last seq seen in its room. */
  position: { epoch?: string; seq: number } = { seq: 0 };
  #client: TestClient<V2Frame> | undefined;
  #reading: Promise<void> | undefined;
  /** Who waits for what. */
  #waiters: { test: (event: V2Frame) => boolean; resolve: () => void }[] = [];

  constructor(name: string, room: string) {
    this.name = name;
    this.room = room;
  }

  /** Starts a session (a resume from its position after the first) and records from then on. */
  async connect(server: ServerProcess, first: boolean): Promise<void> {
    const client = await TestClient.connect<V2Frame>(
      `${server.httpUrl.replace(/^http/, "ws")}/ws`,
      "chat.v2",
    );
    const { name, room } = this;
    client.send(JSON.stringify(
      first
        ? { type: "hello", name, room }
        : { type: "resume", name, token: "-", room: { name: room, ...this.position } },
    ));
    this.#client = client;
    this.failing = false;
    this.#reading = this.#read(client);
  }

  /** Sends a frame, while the socket is open; false once it is not. */
  send(frame: unknown): boolean {
    const client = this.#client;
    if (client === undefined || client.socket.readyState !== WebSocket.OPEN) return false;
    client.send(JSON.stringify(frame));
    return true;
  }

  async #read(client: TestClient<V2Frame>): Promise<void> {
    while (true) {
      let event: V2Frame;
      try {
        event = await client.waitFor(() => true, "a frame", 60_000);
      } catch {
        return;
      }
      if (event.type === "welcome" || event.type === "gap") {
        if (String(event.epoch) !== this.position.epoch) {
          this.position = { epoch: String(event.epoch), seq: 0 };
        }
      }
      if (event.type === "system") {
        if (UNSAVED.test(String(event.text))) this.failing = true;
        if (SAVED.test(String(event.text))) this.failing = false;
      }
      this.#waiters = this.#waiters.filter(({ test, resolve }) => {
        if (!test(event)) return true;
        resolve();
        return false;
      });
      if (event.type !== "message" && event.type !== "history") continue;
      const seen: Seen = {
        id: String(event.id),
        seq: Number(event.seq),
        epoch: String(event.epoch),
        text: String(event.text),
      };
      if (!this.seen.has(seen.id)) this.seen.set(seen.id, seen);
      if (this.failing) this.unsaved.add(seen.id);
      if (seen.epoch !== this.position.epoch) this.position = { epoch: seen.epoch, seq: 0 };
      this.position = { ...this.position, seq: Math.max(this.position.seq, seen.seq) };
    }
  }

  /** Resolves once the message `id` has been received (now, or later). */
  received(id: string): Promise<void> {
    if (this.seen.has(id)) return Promise.resolve();
    return this.until((event) => event.id === id);
  }

  /** Resolves with the next event that passes `test`. */
  until(test: (event: V2Frame) => boolean): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  /** Waits until the server's end closed the socket, and the last frames are recorded. */
  async ended(): Promise<void> {
    await this.#client?.closed;
    await this.#reading;
  }

  /** Closes the socket (the session lingers) and stops recording. */
  async close(): Promise<void> {
    await this.#client?.close();
    await this.#reading;
  }
}

/** Runs one schedule; see the module's description. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const random = seededRandom(options.seed);
  const log = options.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "chat-chaos-" });
  if (options.full) await mountTmpfs(dir, "512m");
  const filler = join(dir, "filler");
  const configDir = await testConfigDir({
    floodOff: true,
    // A resume after a new epoch replays the whole history: let it through, however long.
    limits: { max_buffered_bytes: String(1024 * 1024 * 1024) },
    chat: { history_size: "100000", max_message_len: String(TEXT_LENGTH), session_linger: "60" },
    server: `history:\n  store: kv\n  path: ${join(dir, "history.kv")}\n`,
  });
  const env = { CHAT_CONFIG_DIR: configDir, CHAT_API_KEYS: API_KEY };
  const rooms = Array.from({ length: options.rooms }, (_, index) => `room${index}`);
  const writers = rooms.map((room, index) => new Recorder(`Writer${index}`, room));
  const readers = rooms.map((room, index) => new Recorder(`Reader${index}`, room));
  let sent = 0;
  let server: ServerProcess | undefined;
  /** What went wrong during the lives, before the invariants are checked. */
  const faults: string[] = [];
  let fills = 0;
  try {
    for (let life = 0; life <= options.kills; life++) {
      server = await startServerProcess({ env });
      await Promise.all(
        [...writers, ...readers].map((client) => client.connect(server!, life === 0)),
      );
      if (life === options.kills) break;
      // Writers burst until the kill: long messages, many to a frame, so writes are big.
      let bursting = true;
      const bursts = writers.map(async (writer, index) => {
        while (bursting) {
          for (let count = 0; count < FRAMES; count++) {
            const frame = Array.from({ length: BATCH }, () => {
              const text = `${writer.name}.${life}.${sent++}.`.padEnd(TEXT_LENGTH, "x");
              return { type: "say", text };
            });
            if (!writer.send(frame)) return;
          }
          await new Promise((resolve) => setTimeout(resolve, WRITE_EVERY_MS + index));
        }
      });
      const wait = 300 + random() * (options.seconds * 1000 - 300);
      if (options.full && random() < 0.4) {
        await sleep(wait / 2);
        log(`life ${life}: the disk fills`);
        fills++;
        await fill(filler);
        try {
          await all(writers, (writer) => writer.failing, UNSAVED, "the notice that history fails");
          await Deno.remove(filler);
          await all(writers, (writer) => !writer.failing, SAVED, "the notice that it is saved");
        } catch (error) {
          const said = notable(server.output);
          faults.push(`life ${life}: ${(error as Error).message}; the server said: ${said}`);
          await Deno.remove(filler).catch(() => {});
        }
        await sleep(wait / 2);
      } else {
        await sleep(wait);
      }
      const signal = options.term && random() < 0.3 ? "SIGTERM" : "SIGKILL";
      log(`life ${life}: ${signal} after ${Math.round(wait)} ms`);
      server.child.kill(signal);
      await server.child.status;
      bursting = false;
      await Promise.all([
        ...bursts,
        ...writers.map((w) => w.ended()),
        ...readers.map((r) => r.ended()),
      ]);
      await server.kill();
    }
    // The last life: every writer gets back what it sends; then the history is read whole.
    await Promise.all(writers.map(async (writer) => {
      const texts = Array.from({ length: CLEAN_ROUND }, (_, at) => `${writer.name}.clean.${at}`);
      const back = Promise.all(texts.map((text) => writer.until((event) => event.text === text)));
      writer.send(texts.map((text) => ({ type: "say", text })));
      await within(back, `${writer.name}'s messages to come back`, 10_000).catch((error) => {
        const said = notable(server!.output);
        faults.push(`the clean round: ${(error as Error).message}; the server said: ${said}`);
      });
    }));
    const history = new Map<string, Seen[]>();
    for (const room of rooms) history.set(room, await historyOf(server!, room));
    // Each reader's resume brings it what it missed: up to the newest kept message.
    await within(
      Promise.all(readers.map((reader) => {
        const newest = history.get(reader.room)?.at(-1);
        return newest === undefined ? undefined : reader.received(newest.id);
      })),
      "the readers to catch up",
      20_000,
    ).catch((error) => log(String(error)));
    await Promise.all([...writers, ...readers].map((client) => client.close()));
    const problems = [...faults, ...check(rooms, history, writers, readers)];
    const stored = [...history.values()].reduce((sum, list) => sum + list.length, 0);
    return { seed: options.seed, kills: options.kills, sent, stored, fills, problems };
  } finally {
    await server?.kill();
    await Deno.remove(configDir, { recursive: true });
    if (options.full) await unmount(dir);
    await Deno.remove(dir, { recursive: true });
  }
}

/** The server's last warnings, errors and closes, for a fault's report. */
function notable(output: readonly string[]): string {
  return output.filter((line) => /\[(WRN|ERR|FTL)\]|Closing/.test(line)).slice(-5).join(" | ");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits (at most 10 s) until every writer is in the state `now` says, told by a notice. */
async function all(
  writers: readonly Recorder[],
  now: (writer: Recorder) => boolean,
  notice: RegExp,
  what: string,
): Promise<void> {
  await within(
    Promise.all(
      writers.map((writer) =>
        now(writer) ? undefined : writer.until((event) => notice.test(String(event.text)))
      ),
    ),
    what,
    10_000,
  );
}

/** A room's whole history, through the server API, oldest first, a page at a time. */
async function historyOf(server: ServerProcess, room: string): Promise<Seen[]> {
  const read = async (query: string) => {
    const response = await fetch(`${server.httpUrl}/api/v1/rooms/${room}/history?${query}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    return await response.json() as {
      epoch: string;
      more: boolean;
      messages: { id: string; seq: number; text: string }[];
    };
  };
  const { epoch } = await read("limit=1");
  const messages: Seen[] = [];
  let since = 0;
  while (true) {
    const page = await read(`since=${since}&epoch=${epoch}&limit=1000`);
    messages.push(...page.messages.map(({ id, seq, text }) => ({ id, seq, text, epoch })));
    if (!page.more || page.messages.length === 0) return messages;
    since = page.messages.at(-1)!.seq;
  }
}

/** Every invariant broken, in words. */
function check(
  rooms: readonly string[],
  history: ReadonlyMap<string, Seen[]>,
  writers: readonly Recorder[],
  readers: readonly Recorder[],
): string[] {
  const problems: string[] = [];
  for (const [index, room] of rooms.entries()) {
    const kept = history.get(room) ?? [];
    const byId = new Map(kept.map((message) => [message.id, message]));
    if (byId.size !== kept.length) problems.push(`${room}: an id is in the history twice`);
    const texts = new Set(kept.map((message) => message.text));
    if (texts.size !== kept.length) problems.push(`${room}: a message is in the history twice`);
    for (let at = 1; at < kept.length; at++) {
      if (kept[at].seq <= kept[at - 1].seq) {
        problems.push(`${room}: seq ${kept[at].seq} follows ${kept[at - 1].seq}`);
      }
    }
    const writer = writers[index];
    const reader = readers[index];
    const seqs = new Map<string, string>();
    const told = new Set([...writer.unsaved, ...reader.unsaved]);
    for (const client of [writer, reader]) {
      for (const seen of client.seen.values()) {
        const stored = byId.get(seen.id);
        if (stored === undefined) {
          if (!told.has(seen.id)) problems.push(`${room}: ${client.name} saw ${seen.id}, not kept`);
        } else if (stored.seq !== seen.seq) {
          problems.push(
            `${room}: ${client.name} saw ${seen.id} as ${seen.seq}, kept as ${stored.seq}`,
          );
        }
        const key = `${seen.epoch} ${seen.seq}`;
        const other = seqs.get(key);
        if (other !== undefined && other !== seen.id) {
          problems.push(`${room}: seq ${seen.seq} was both ${other} and ${seen.id}`);
        }
        seqs.set(key, seen.id);
      }
    }
    for (const message of kept) {
      if (!reader.seen.has(message.id)) {
        problems.push(`${room}: ${message.id} is kept, and its reader never received it`);
      }
      if (!message.text.startsWith(`${writer.name}.`)) {
        problems.push(`${room}: ${message.id} was sent by nobody`);
      }
    }
  }
  return problems.slice(0, 50);
}

if (import.meta.main) {
  const flags = parseArgs(Deno.args, {
    string: ["runs", "kills", "seconds", "seed", "rooms"],
    boolean: ["term", "full", "verbose", "help"],
    default: { runs: "20", kills: "8", seconds: "1.5", seed: "1", rooms: "3" },
  });
  if (flags.help) {
    console.log(
      "Usage: deno task chaos [--runs 20] [--kills 8] [--seconds 1.5] [--seed 1] [--rooms 3] [--term] [--full]",
    );
    Deno.exit(0);
  }
  const started = performance.now();
  let failed = 0;
  for (let run = 0; run < Number(flags.runs); run++) {
    const report = await runChaos({
      kills: Number(flags.kills),
      seconds: Number(flags.seconds),
      seed: Number(flags.seed) + run,
      rooms: Number(flags.rooms),
      term: flags.term,
      full: flags.full,
      log: flags.verbose ? console.log : undefined,
    });
    const verdict = report.problems.length === 0 ? "ok" : `${report.problems.length} problems`;
    console.log(
      `seed ${report.seed}: ${report.kills} kills, ${report.fills} full disks, ${report.sent} sent, ${report.stored} kept: ${verdict}`,
    );
    for (const problem of report.problems) console.log(`  ${problem}`);
    if (report.problems.length > 0) failed++;
  }
  const seconds = Math.round((performance.now() - started) / 1000);
  console.log(`${Number(flags.runs) - failed} of ${flags.runs} schedules held, in ${seconds} s`);
  Deno.exit(failed === 0 ? 0 : 1);
}
