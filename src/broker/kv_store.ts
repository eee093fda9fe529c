/**
 * Room logs in a Deno KV file, so a restarted server still has every
 * message any client saw. Keys:
 *
 * - `["room", <room key>]`: a {@linkcode StoredRoom}: the room's spelling,
 *   the life its messages are filed under, its epoch and its newest seq.
 * - `["msg", <room key>, <life>, <first seq>]`: a page of messages with
 *   consecutive seqs, written in one go as their JSON (one write per room per
 *   batch costs far less than one per message, and one byte string far less
 *   than as many objects); a page goes once all its messages have fallen out
 *   of the room's newest `history_size`.
 * - `["failing"]`: present while writes fail, so a restart knows that
 *   messages may have been delivered without being stored.
 * - `["mod", <record key>]`: a moderation record (a ban, a mute, a room's
 *   settings), see {@linkcode ModerationRecord}.
 *
 * Messages are filed under the room's life (the epoch it was created with),
 * so removing a room's messages can never touch those of a room of the same
 * name created afterwards.
 *
 * Crash consistency is by construction, twice over. Every batch is written
 * in one atomic operation (the broker cuts batches to fit Deno KV's limits
 * before it writes them), so a crash leaves each batch whole or absent. And
 * a room's newest seq is read back from what is stored, not only from its
 * record, so even a file written otherwise (by an older version, say) goes on
 * after its newest stored message and never numbers a seq twice.
 *
 * Everything read back is decoded and checked: a damaged record stops the
 * start ({@linkcode StoreDamagedError}), or, when repairing, is dropped and
 * said so.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { dirname } from "@std/path";
import { DecodeError, moderationRecord } from "./decode.ts";
import {
  keyBytes,
  MAX_BATCH_BYTES,
  MAX_KEY_BYTES,
  MAX_MUTATIONS,
  NOTE_OVERHEAD_BYTES,
  type Page,
  type PageRange,
  paginate,
  storedPage,
  storedRoom,
  withinLimits,
  type Write,
} from "./kv_layout.ts";
import { inboxOwner, logKey, type MessageNote, type ModerationRecord } from "./types.ts";

const log = getLogger(["chat", "history"]);

/** What the store keeps of one room. */
export interface StoredRoom {
  /** The room's name as first written. */
  readonly name: string;
  /** The epoch the room was created with: its messages are filed under it. */
  readonly life: string;
  /** The epoch of its numbering now. */
  readonly epoch: string;
  /** The seq of its newest message. */
  readonly lastSeq: number;
}

/** A stored message and its number in its room. */
export interface StoredMessage {
  readonly note: MessageNote;
  readonly seq: number;
}

/** Everything kept of one room, messages oldest first. */
export interface LoadedRoom {
  readonly room: StoredRoom;
  readonly messages: StoredMessage[];
}

/** One write: the rooms whose record changed, each with its new messages (maybe none). */
export interface Batch {
  readonly rooms: readonly {
    readonly room: StoredRoom;
    /** In seq order, the newest at most `room.lastSeq`. */
    readonly messages: readonly StoredMessage[];
  }[];
  /** Whether, once written, every room's record is stored: the store is no longer failing. */
  readonly settles: boolean;
}

/** The writes of a batch, planned by {@linkcode KvStore.plan} and done by {@linkcode KvStore.commit}. */
export interface WritePlan {
  /** Whether the writes fit one atomic operation of Deno KV. */
  readonly fits: boolean;
  readonly writes: readonly Write[];
  /** The page index of each room once the writes are done. */
  readonly indexes: ReadonlyMap<string, PageRange[]>;
}

/** A record read back is not what the store writes; `key` names it, the message says why. */
export class StoreDamagedError extends Error {
  /** The record's key; `undefined` when even that could not be read. */
  readonly key: Deno.KvKey | undefined;

  constructor(key: Deno.KvKey | undefined, problem: string) {
    super(problem);
    this.name = "StoreDamagedError";
    this.key = key;
  }
}

/**
 * Runs a read of the whole file: what Deno KV itself cannot read (a value
 * it cannot deserialize, a key it cannot decode) is a damaged file too.
 */
async function unreadable<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof StoreDamagedError) throw error;
    throw new StoreDamagedError(undefined, error instanceof Error ? error.message : String(error));
  }
}

/** The store could not be opened; the message says why, for the operator. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreOpenError";
  }
}

/** Room logs kept on disk. */
export class KvStore {
  readonly #kv: Deno.Kv;
  readonly #historySize: number;
  /** Messages kept of each inbox (an account's private messages). */
  readonly #inboxSize: number;
  /** The pages of each room life, oldest first, by `key` and `life` joined with a newline. */
  readonly #pages = new Map<string, PageRange[]>();
  /** Keys a repairing load dropped, deleted by {@linkcode KvStore.finishRepair}. */
  readonly #repairs: Deno.KvKey[] = [];

  private constructor(kv: Deno.Kv, historySize: number, inboxSize: number) {
    this.#kv = kv;
    this.#historySize = historySize;
    this.#inboxSize = inboxSize;
  }

  /** How many of a log's newest messages are kept: a room's `history_size`, an inbox's own. */
  #keptOf(log: string): number {
    return inboxOwner(log) === undefined ? this.#historySize : this.#inboxSize;
  }

  /**
   * Opens (or creates) the store at `path`. Throws {@linkcode StoreOpenError}
   * when the file cannot be opened as a store, saying why.
   */
  static async open(
    path: string,
    historySize: number,
    options: { readonly inboxSize?: number } = {},
  ): Promise<KvStore> {
    const { inboxSize = historySize } = options;
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
      const info = await Deno.stat(path).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      });
      if (info !== undefined && !info.isFile) {
        throw new StoreOpenError("is not a file");
      }
      const kv = await Deno.openKv(path);
      // Reading proves the file is a store; a write at once finds a read-only one.
      await kv.get(["failing"]);
      return new KvStore(kv, historySize, inboxSize);
    } catch (error) {
      if (error instanceof StoreOpenError) throw error;
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new StoreOpenError(reason);
    }
  }

  /**
   * Everything kept, room by room, and whether writes were failing when the
   * last run ended (messages may then have been delivered and not stored).
   * A room's newest seq is its newest stored message's when that is newer
   * than its record. Every record is checked: a damaged one throws
   * {@linkcode StoreDamagedError}, or, with `repair`, is deleted and logged.
   */
  load(options: { repair?: boolean } = {}): Promise<{
    rooms: LoadedRoom[];
    wasFailing: boolean;
  }> {
    return unreadable(() => this.#load(options));
  }

  async #load(options: { repair?: boolean }): Promise<{
    rooms: LoadedRoom[];
    wasFailing: boolean;
  }> {
    const damaged = (key: Deno.KvKey, error: unknown): void => {
      if (!(error instanceof DecodeError)) throw error;
      if (!options.repair) throw new StoreDamagedError(key, error.message);
      log.warning("Repairing the store: dropped {key}, which was damaged ({problem})", {
        key: JSON.stringify(key),
        problem: error.message,
      });
      this.#repairs.push(key);
    };
    const rooms: LoadedRoom[] = [];
    for await (const entry of this.#kv.list({ prefix: ["room"] })) {
      let room: StoredRoom;
      try {
        room = storedRoom(entry.key, entry.value);
      } catch (error) {
        damaged(entry.key, error);
        continue;
      }
      const key = entry.key[1] as string;
      const messages: StoredMessage[] = [];
      const pages: PageRange[] = [];
      for await (const stored of this.#kv.list({ prefix: ["msg", key, room.life] })) {
        let page: Page;
        try {
          page = storedPage(stored.key, stored.value, key, pages.at(-1)?.last ?? 0);
        } catch (error) {
          damaged(stored.key, error);
          continue;
        }
        page.notes.forEach((note, index) => messages.push({ note, seq: page.first + index }));
        pages.push({ first: page.first, last: page.first + page.notes.length - 1 });
      }
      this.#pages.set(`${key}\n${room.life}`, pages);
      const newest = pages.at(-1)?.last ?? 0;
      if (newest > room.lastSeq) {
        log.warning(
          "Room {room}: messages up to seq {newest} were stored past its record ({recorded}); its log goes on after them",
          { room: room.name, newest, recorded: room.lastSeq },
        );
        room = { ...room, lastSeq: newest };
      }
      // A smaller history_size than last run's keeps only the newest.
      const keep = this.#keptOf(room.name);
      const kept = keep === 0 ? [] : messages.slice(-keep);
      rooms.push({ room, messages: kept });
    }
    const failing = await this.#kv.get(["failing"]);
    return { rooms, wasFailing: failing.versionstamp !== null };
  }

  /** Deletes what a repairing load dropped; call once the rest is read. */
  async finishRepair(): Promise<void> {
    for (const key of this.#repairs.splice(0)) await this.#kv.delete(key);
  }

  /**
   * The writes of `batch`: whether they fit one atomic operation of Deno KV
   * (mutations, bytes), as {@linkcode KvStore.commit} needs (the broker cuts
   * batches to fit), and what to commit. A plan holds until the next commit:
   * commit it before planning another.
   */
  plan(batch: Batch): WritePlan {
    const { writes, indexes } = this.#plan(batch);
    return { fits: withinLimits(writes), writes, indexes };
  }

  /**
   * Writes a planned batch in one atomic operation: its messages, as one
   * page per room (more when large), the pages that fell out of each room's
   * history, and the records of its rooms. It is whole or absent after any
   * crash; a failure throws, and nothing of it is written.
   */
  async commit(plan: WritePlan): Promise<void> {
    const { writes, indexes, fits } = plan;
    if (!fits) throw new RangeError("Cannot commit a batch larger than one atomic operation");
    const operation = this.#kv.atomic();
    for (const write of writes) {
      if (write.value === undefined) operation.delete(write.key);
      else operation.set(write.key, write.value);
    }
    await this.#commitOperation(operation);
    for (const [id, ranges] of indexes) this.#pages.set(id, ranges);
  }

  /** The writes of a batch, and the page index of each room once they are done. */
  #plan(batch: Batch): {
    writes: Write[];
    indexes: Map<string, PageRange[]>;
  } {
    const writes: Write[] = [];
    const indexes = new Map<string, PageRange[]>();
    /** Pages fallen out of each room's history, deleted as far as the write has room for. */
    const stale: { id: string; key: string; life: string; ranges: PageRange[] }[] = [];
    for (const { room, messages } of batch.rooms) {
      const key = logKey(room.name);
      writes.push({
        key: ["room", key],
        value: room,
        bytes: NOTE_OVERHEAD_BYTES,
        keyBytes: keyBytes(key),
      });
      const keep = this.#keptOf(room.name);
      if (keep === 0 || messages.length === 0) continue;
      const id = `${key}\n${room.life}`;
      const ranges = [...(this.#pages.get(id) ?? [])];
      for (const page of paginate(messages)) {
        writes.push({
          key: ["msg", key, room.life, page.first],
          value: page.value,
          bytes: page.bytes,
          keyBytes: keyBytes(key),
        });
        ranges.push({ first: page.first, last: page.last });
      }
      const keepFrom = room.lastSeq - keep + 1;
      const kept = ranges.findIndex((range) => range.last >= keepFrom);
      stale.push({ id, key, life: room.life, ranges: ranges.slice(0, kept === -1 ? 0 : kept) });
      indexes.set(id, ranges);
    }
    // A successful write means the store works again, once every room's record is written.
    if (batch.settles) writes.push({ key: ["failing"], bytes: 0, keyBytes: keyBytes("") });
    // The rest of the old pages (a lowered history_size leaves many) go with later writes.
    let count = writes.length;
    let keys = writes.reduce((sum, write) => sum + write.keyBytes, 0);
    let bytes = writes.reduce((sum, write) => sum + write.bytes, keys);
    for (const { id, key, life, ranges } of stale) {
      const cost = keyBytes(key);
      let deleted = 0;
      for (const range of ranges) {
        if (++count > MAX_MUTATIONS || (keys += cost) > MAX_KEY_BYTES) break;
        if ((bytes += cost) > MAX_BATCH_BYTES) break;
        writes.push({ key: ["msg", key, life, range.first], bytes: 0, keyBytes: cost });
        deleted++;
      }
      indexes.set(id, indexes.get(id)!.slice(deleted));
    }
    return { writes, indexes };
  }

  /** Notes that writes are failing; best effort, as the store is failing. */
  async markFailing(): Promise<void> {
    await this.#kv.set(["failing"], true).catch((error) => {
      log.warning("Cannot mark the store as failing, either: {error}", { error });
    });
  }

  /**
   * Forgets the record of a room of the life `life`, unless a newer life of
   * that name replaced it. Its messages are then no longer loaded; remove
   * them with {@linkcode KvStore.removeMessages}.
   */
  async removeRoom(name: string, life: string): Promise<void> {
    const key = logKey(name);
    const record = await this.#kv.get<StoredRoom>(["room", key]);
    if (record.value?.life === life) {
      await this.#commitOperation(this.#kv.atomic().check(record).delete(["room", key]));
    }
  }

  /**
   * Deletes the messages of a room's life, a chunk at a time, until done or
   * `signal` aborts. What is left is cleared by {@linkcode KvStore.removeOrphans}
   * at the next start.
   */
  async removeMessages(name: string, life: string, signal?: AbortSignal): Promise<void> {
    this.#pages.delete(`${logKey(name)}\n${life}`);
    await this.#deleteAll(["msg", logKey(name), life], signal);
  }

  /**
   * Deletes the messages filed under a life that `isLive` does not claim
   * (left over from a removal cut short), until done or `signal` aborts.
   */
  async removeOrphans(
    isLive: (key: string, life: string) => boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const orphans = new Map<string, [string, string]>();
    for await (const entry of this.#kv.list({ prefix: ["msg"] }, { batchSize: 500 })) {
      const [, key, life] = entry.key as [string, string, string];
      if (!isLive(key, life)) orphans.set(`${key}\n${life}`, [key, life]);
    }
    for (const [key, life] of orphans.values()) {
      await this.#deleteAll(["msg", key, life], signal);
      log.info("Removed the stored messages of an earlier life of room {room}", { room: key });
    }
  }

  /** Every moderation record, by key, checked as {@linkcode KvStore.load} checks rooms. */
  loadRecords(options: { repair?: boolean } = {}): Promise<Map<string, ModerationRecord>> {
    return unreadable(() => this.#loadRecords(options));
  }

  async #loadRecords(options: { repair?: boolean }): Promise<Map<string, ModerationRecord>> {
    const records = new Map<string, ModerationRecord>();
    for await (const entry of this.#kv.list({ prefix: ["mod"] })) {
      try {
        const key = entry.key[1];
        if (typeof key !== "string") throw new DecodeError("a record's key is not text");
        records.set(key, moderationRecord(entry.value));
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        if (!options.repair) throw new StoreDamagedError(entry.key, error.message);
        log.warning("Repairing the store: dropped {key}, which was damaged ({problem})", {
          key: JSON.stringify(entry.key),
          problem: error.message,
        });
        this.#repairs.push(entry.key);
      }
    }
    return records;
  }

  /** Saves a moderation record, or deletes it with `undefined`. */
  async saveRecord(key: string, record: ModerationRecord | undefined): Promise<void> {
    if (record === undefined) await this.#kv.delete(["mod", key]);
    else await this.#kv.set(["mod", key], record);
  }

  close(): void {
    this.#kv.close();
  }

  async #deleteAll(prefix: Deno.KvKey, signal?: AbortSignal): Promise<void> {
    while (!signal?.aborted) {
      const operation = this.#kv.atomic();
      let count = 0;
      for await (const entry of this.#kv.list({ prefix }, { limit: MAX_MUTATIONS })) {
        operation.delete(entry.key);
        count++;
      }
      if (count === 0) return;
      await this.#commitOperation(operation);
    }
  }

  async #commitOperation(operation: Deno.AtomicOperation): Promise<void> {
    const result = await operation.commit();
    if (!result.ok) throw new Error("a check of the write failed");
  }
}
