/**
 * Room logs in a Deno KV file, so a restarted server still has every
 * message any client saw. Keys:
 *
 * - `["room", <room key>]`: a {@linkcode StoredRoom}: the room's spelling,
 *   the life its messages are filed under, its epoch and its newest seq.
 * - `["msg", <room key>, <life>, <first seq>]`: a page of messages with
 *   consecutive seqs, written in one go (one write per room per batch costs
 *   far less than one per message); a page goes once all its messages have
 *   fallen out of the room's newest `history_size`.
 * - `["failing"]`: present while writes fail, so a restart knows that
 *   messages may have been delivered without being stored.
 * - `["mod", <record key>]`: a moderation record (a ban, a mute, a room's
 *   settings), see {@linkcode ModerationRecord}.
 *
 * Messages are filed under the room's life (the epoch it was created with),
 * so removing a room's messages can never touch those of a room of the same
 * name created afterwards.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { dirname } from "@std/path";
import { nameKey } from "../text/names.ts";
import type { MessageNote, ModerationRecord } from "./types.ts";

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

/** One write: new messages, and the rooms whose record changed. */
export interface Batch {
  readonly messages: readonly { readonly room: StoredRoom; readonly message: StoredMessage }[];
  readonly rooms: readonly StoredRoom[];
}

/** The store could not be opened; the message says why, for the operator. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreOpenError";
  }
}

/** Deno KV takes at most 1,000 mutations and 800 KiB in one atomic operation... */
const MAX_MUTATIONS = 900;
const MAX_BATCH_BYTES = 600 * 1024;
/** ...and values of at most 64 KiB. */
const MAX_PAGE_BYTES = 48 * 1024;
/** A generous bound on the size of a key and a note's envelope, besides its text. */
const NOTE_OVERHEAD_BYTES = 512;

/** A page as stored: its messages, the first numbered `first`, the next `first + 1`, ... */
interface Page {
  readonly first: number;
  readonly notes: readonly MessageNote[];
}

/** Where a page is: its room's key and life, and the seqs it holds. */
interface PageRange {
  readonly first: number;
  readonly last: number;
}

/** The upper bound of a note's stored size, in bytes. */
function noteBytes(note: MessageNote): number {
  return NOTE_OVERHEAD_BYTES + note.text.length * 3 + note.author.name.length * 3;
}

/** Room logs kept on disk. */
export class KvStore {
  readonly #kv: Deno.Kv;
  readonly #historySize: number;
  /** The pages of each room life, oldest first, by `key` and `life` joined with a newline. */
  readonly #pages = new Map<string, PageRange[]>();

  private constructor(kv: Deno.Kv, historySize: number) {
    this.#kv = kv;
    this.#historySize = historySize;
  }

  /**
   * Opens (or creates) the store at `path`. Throws {@linkcode StoreOpenError}
   * when the file cannot be opened as a store, saying why.
   */
  static async open(path: string, historySize: number): Promise<KvStore> {
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
      return new KvStore(kv, historySize);
    } catch (error) {
      if (error instanceof StoreOpenError) throw error;
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new StoreOpenError(reason);
    }
  }

  /**
   * Everything kept, room by room, and whether writes were failing when the
   * last run ended (messages may then have been delivered and not stored).
   */
  async load(): Promise<{ rooms: LoadedRoom[]; wasFailing: boolean }> {
    const rooms: LoadedRoom[] = [];
    for await (const entry of this.#kv.list<StoredRoom>({ prefix: ["room"] })) {
      const room = entry.value;
      const messages: StoredMessage[] = [];
      const key = entry.key[1] as string;
      const pages: PageRange[] = [];
      for await (const stored of this.#kv.list<Page>({ prefix: ["msg", key, room.life] })) {
        const { first, notes } = stored.value;
        notes.forEach((note, index) => messages.push({ note, seq: first + index }));
        pages.push({ first, last: first + notes.length - 1 });
      }
      this.#pages.set(`${key}\n${room.life}`, pages);
      // A smaller history_size than last run's keeps only the newest.
      const kept = this.#historySize === 0 ? [] : messages.slice(-this.#historySize);
      rooms.push({ room, messages: kept });
    }
    const failing = await this.#kv.get(["failing"]);
    return { rooms, wasFailing: failing.versionstamp !== null };
  }

  /**
   * Writes a batch: its messages, as one page per room (more when large),
   * the pages that fell out of each room's history, and the records of its
   * rooms. Large batches take several atomic operations, in order; a failure
   * throws, and what was written stays.
   */
  async commit(batch: Batch): Promise<void> {
    const writes: { key: Deno.KvKey; value?: unknown; bytes: number }[] = [];
    /** The page index of each room as it will be once the batch is written. */
    const indexes = new Map<string, PageRange[]>();
    if (this.#historySize > 0) {
      for (const { room, messages } of groupByRoom(batch.messages)) {
        const key = nameKey(room.name);
        const id = `${key}\n${room.life}`;
        const ranges = [...(this.#pages.get(id) ?? [])];
        for (const page of paginate(messages)) {
          writes.push({ key: ["msg", key, room.life, page.first], value: page, bytes: page.bytes });
          ranges.push({ first: page.first, last: page.first + page.notes.length - 1 });
        }
        const keepFrom = room.lastSeq - this.#historySize + 1;
        const stale = ranges.findIndex((range) => range.last >= keepFrom);
        for (const range of ranges.splice(0, stale === -1 ? ranges.length : stale)) {
          writes.push({ key: ["msg", key, room.life, range.first], bytes: 0 });
        }
        indexes.set(id, ranges);
      }
    }
    for (const room of batch.rooms) {
      writes.push({ key: ["room", nameKey(room.name)], value: room, bytes: NOTE_OVERHEAD_BYTES });
    }
    // A successful write means the store works again.
    writes.push({ key: ["failing"], bytes: 0 });
    let operation = this.#kv.atomic();
    let mutations = 0;
    let bytes = 0;
    for (const write of writes) {
      if (mutations + 1 > MAX_MUTATIONS || bytes + write.bytes > MAX_BATCH_BYTES) {
        await this.#commitOperation(operation);
        operation = this.#kv.atomic();
        mutations = 0;
        bytes = 0;
      }
      if (write.value === undefined) operation.delete(write.key);
      else operation.set(write.key, write.value);
      mutations++;
      bytes += write.bytes;
    }
    await this.#commitOperation(operation);
    for (const [id, ranges] of indexes) this.#pages.set(id, ranges);
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
    const key = nameKey(name);
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
    this.#pages.delete(`${nameKey(name)}\n${life}`);
    await this.#deleteAll(["msg", nameKey(name), life], signal);
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

  /** Every moderation record, by key. */
  async loadRecords(): Promise<Map<string, ModerationRecord>> {
    const records = new Map<string, ModerationRecord>();
    for await (const entry of this.#kv.list<ModerationRecord>({ prefix: ["mod"] })) {
      records.set(entry.key[1] as string, entry.value);
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

/** The messages of a batch by room life, each room's in order, with its newest record. */
function groupByRoom(
  messages: Batch["messages"],
): Iterable<{ room: StoredRoom; messages: StoredMessage[] }> {
  const byRoom = new Map<string, { room: StoredRoom; messages: StoredMessage[] }>();
  for (const { room, message } of messages) {
    const id = `${room.name}\n${room.life}`;
    const group = byRoom.get(id);
    if (group === undefined) byRoom.set(id, { room, messages: [message] });
    else {
      group.messages.push(message);
      if (room.lastSeq > group.room.lastSeq) group.room = room;
    }
  }
  return byRoom.values();
}

/** Splits a room's messages into pages of consecutive seqs that fit in one value. */
function paginate(messages: readonly StoredMessage[]): (Page & { bytes: number })[] {
  const pages: (Page & { notes: MessageNote[]; bytes: number })[] = [];
  let page: (Page & { notes: MessageNote[]; bytes: number }) | undefined;
  for (const { note, seq } of messages) {
    const size = noteBytes(note);
    if (
      page === undefined || seq !== page.first + page.notes.length ||
      page.bytes + size > MAX_PAGE_BYTES
    ) {
      page = { first: seq, notes: [], bytes: 0 };
      pages.push(page);
    }
    page.notes.push(note);
    page.bytes += size;
  }
  return pages;
}
