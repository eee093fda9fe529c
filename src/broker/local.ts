/**
 * The broker of a server running alone. It numbers each room's messages and
 * keeps each room's epoch; with a store, it writes every message before it
 * delivers it, so no message a client saw is missing after a restart.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Metrics } from "../metrics.ts";
import type { Batch, KvStore, LoadedRoom, StoredMessage } from "./kv_store.ts";
import {
  jsonUnits,
  keyBytes,
  MAX_BATCH_BYTES,
  MAX_MUTATIONS,
  MAX_PAGE_BYTES,
  noteBytes,
  RECORD_KEYS_PER_BATCH,
} from "./kv_layout.ts";
import {
  type Broker,
  type BrokerHandler,
  logKey,
  type MessageNote,
  type ModerationRecord,
  type PresenceNote,
  type PublishOutcome,
  randomId,
  type Records,
  type RoomLog,
  type RoomNote,
  type TypingNote,
} from "./types.ts";

const log = getLogger(["chat", "history"]);

/** One room's log, as this broker numbers it. */
interface LogState {
  readonly name: string;
  /** The epoch the room was created with; its stored messages are filed under it. */
  readonly life: string;
  epoch: string;
  /** The seq given last (messages may be numbered and not yet stored)... */
  lastSeq: number;
  /** ...and the newest one stored. */
  stored: number;
  /** Set once the room is removed, so nothing more of it is stored. */
  removed: boolean;
}

/** A message on its way, with its log and number. */
interface MessageEntry {
  readonly note: MessageNote;
  readonly log: LogState;
  readonly seq: number;
}

/** A room event on its way: a message, or a presence note (not numbered). */
type Entry = MessageEntry | { readonly note: PresenceNote };

function isMessage(entry: Entry): entry is MessageEntry {
  return entry.note.kind === "message";
}

/** Whether the store keeps `entry`: a message of a room not removed. */
function isStored(entry: Entry): entry is MessageEntry {
  return isMessage(entry) && !entry.log.removed;
}

/**
 * How many of `entries`, from the first (one at least), likely fit one
 * atomic write: their messages' JSON within its bytes, one mutation each.
 */
function likelyFit(entries: readonly Entry[]): number {
  let bytes = 0;
  let messages = 0;
  for (let count = 0; count < entries.length; count++) {
    const entry = entries[count];
    if (!isStored(entry)) continue;
    bytes += jsonUnits(entry.note);
    if (count > 0 && (bytes > MAX_BATCH_BYTES || ++messages > MAX_MUTATIONS)) return count;
  }
  return entries.length;
}

/** What a {@linkcode LocalBroker} keeps its logs in; by default, memory only. */
export interface LocalBrokerOptions {
  /** Where messages are written before they are delivered. */
  readonly store?: KvStore;
  /** Where failed writes are counted. */
  readonly metrics?: Metrics;
}

/**
 * Delivers every note back to the chatroom, in the order published. With a
 * store, the messages published in one go are written in one batch (one
 * atomic operation when they fit), and delivered once it is written; while
 * a batch is being written, the next one gathers.
 */
export class LocalBroker implements Broker {
  readonly instance: string = randomId();
  /** Alone, there is no link to lose. */
  readonly healthy = true;
  /** Alone, every room is read here all along: following one has nothing to wait for. */
  readonly log: RoomLog = {
    epochOf: (room) => this.#logOf(room).epoch,
    publish: (note) => this.#publish(note),
    follow: () => {},
    unfollow: () => {},
    removed: (room) => this.#removed(room),
  };
  readonly records: Records = {
    save: (key, record) => this.#saveRecord(key, record),
    removeExpired: (key, at) => this.#removeExpired(key, at),
    all: () => this.#records,
  };
  readonly #store: KvStore | undefined;
  readonly #metrics: Metrics | undefined;
  readonly #logs = new Map<string, LogState>();
  #handler: BrokerHandler | undefined;
  /** Notes published and not yet delivered, in order. */
  readonly #queue: Entry[] = [];
  /** Resolves when the queue is empty and nothing is being written. */
  #drained: Promise<void> = Promise.resolve();
  #flushing = false;
  /** Store writes, one after another, so a room's record is never written out of order. */
  #writes: Promise<void> = Promise.resolve();
  /** Whether the last write succeeded. */
  #saving = true;
  /** Logs whose record the store does not have yet (new epoch, or a failed write). */
  readonly #dirty = new Set<LogState>();
  /** Logs with messages delivered without being stored: their next stored message starts a new epoch. */
  readonly #unsaved = new Set<LogState>();
  /** Deletions running in the background, stopped by {@linkcode LocalBroker.close}. */
  readonly #cleanups = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  /** Bans, mutes and room settings, by key; also in the store, when there is one. */
  #records = new Map<string, ModerationRecord>();
  /** What the store held at start, replayed by {@linkcode LocalBroker.start}. */
  #loaded: LoadedRoom[] = [];
  #loadedFailing = false;

  constructor(options: LocalBrokerOptions = {}) {
    this.#store = options.store;
    this.#metrics = options.metrics;
  }

  /**
   * A broker over the logs in `options.store`, read now so that every room's
   * epoch is known before the chatroom asks. When writes were failing as the
   * last run ended, messages may have been delivered and not stored, so
   * every room starts a new epoch.
   */
  static async open(
    options: LocalBrokerOptions & { readonly repair?: boolean },
  ): Promise<LocalBroker> {
    const broker = new LocalBroker(options);
    const { store, repair } = options;
    if (store === undefined) return broker;
    const { rooms, wasFailing } = await store.load({ repair });
    for (const { room } of rooms) {
      const roomLog: LogState = { ...room, stored: room.lastSeq, removed: false };
      if (wasFailing) {
        roomLog.epoch = randomId();
        broker.#dirty.add(roomLog);
      }
      broker.#logs.set(logKey(room.name), roomLog);
    }
    broker.#loaded = rooms;
    broker.#loadedFailing = wasFailing;
    broker.#records = await store.loadRecords({ repair });
    if (repair) await store.finishRepair();
    return broker;
  }

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  typing(note: TypingNote): void {
    this.#handler?.deliverTyping(note);
  }

  /** Replays the stored logs into the chatroom, and clears what earlier runs left behind. */
  async start(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    for (const [key, record] of this.#records) this.#handler?.recordChanged(key, record);
    for (const { room, messages } of this.#loaded.splice(0)) {
      const epoch = this.#logOf(room.name).epoch;
      for (const { note, seq } of messages) this.#handler?.deliverRoomNote(note, { epoch, seq });
    }
    if (this.#loadedFailing) {
      log.warning(
        "Writes were failing when the server last stopped: every room starts a new epoch",
      );
      await this.#write([]);
    }
    this.#cleanUp(() =>
      store.removeOrphans((key, life) => this.#logs.get(key)?.life === life, this.#closing.signal)
    );
  }

  #publish(note: RoomNote): PublishOutcome {
    // A message is stored in one value of the store, which takes 64 KiB at most.
    if (this.#store !== undefined && note.kind === "message" && noteBytes(note) > MAX_PAGE_BYTES) {
      return "too_large";
    }
    let entry: Entry;
    if (note.kind === "message") {
      const roomLog = this.#logOf(note.room);
      entry = { note, log: roomLog, seq: ++roomLog.lastSeq };
    } else {
      entry = { note };
    }
    if (this.#store === undefined) {
      this.#deliver(entry);
      return "queued";
    }
    this.#queue.push(entry);
    if (!this.#flushing) {
      this.#flushing = true;
      this.#drained = new Promise((resolve) => queueMicrotask(() => this.#flush().then(resolve)));
    }
    return "queued";
  }

  /** Kept in memory, and in the store when there is one; false when the store cannot take it. */
  async #saveRecord(key: string, record: ModerationRecord | undefined): Promise<boolean> {
    const store = this.#store;
    if (store !== undefined) {
      try {
        await this.#inTurn(() => store.saveRecord(key, record));
      } catch (error) {
        log.error("Cannot store a moderation record: {error}", { error });
        return false;
      }
    }
    if (record === undefined) this.#records.delete(key);
    else this.#records.set(key, record);
    this.#handler?.recordChanged(key, record);
    return true;
  }

  async #removeExpired(key: string, at: number): Promise<void> {
    // In turn with the writes: a record saved again since is left alone.
    const store = this.#store;
    const stale = (): boolean => this.#records.get(key)?.at === at;
    if (store !== undefined) {
      await this.#inTurn(async () => {
        if (stale()) await store.saveRecord(key, undefined);
      });
    }
    if (!stale()) return;
    this.#records.delete(key);
    this.#handler?.recordChanged(key, undefined);
  }

  #removed(room: string): void {
    const key = logKey(room);
    const removed = this.#logs.get(key);
    if (removed === undefined) return;
    this.#logs.delete(key);
    removed.removed = true;
    this.#dirty.delete(removed);
    this.#unsaved.delete(removed);
    const store = this.#store;
    if (store === undefined) return;
    // The record goes in turn with the writes; the messages in the background.
    this.#cleanUp(async () => {
      await this.#inTurn(() => store.removeRoom(removed.name, removed.life));
      await store.removeMessages(removed.name, removed.life, this.#closing.signal);
    });
  }

  /** Waits until everything published is written and delivered, then closes the store. */
  async close(): Promise<void> {
    await this.#drained;
    await this.#writes;
    this.#closing.abort();
    await Promise.allSettled(this.#cleanups);
    this.#store?.close();
  }

  #logOf(room: string): LogState {
    const key = logKey(room);
    let roomLog = this.#logs.get(key);
    if (roomLog === undefined) {
      const epoch = randomId();
      roomLog = { name: room, life: epoch, epoch, lastSeq: 0, stored: 0, removed: false };
      this.#logs.set(key, roomLog);
    }
    return roomLog;
  }

  /**
   * Writes and delivers what was published, a batch at a time: as much as
   * fits one atomic write of the store (cut before it is written, so that
   * every batch is whole or absent after a crash), delivered once written.
   */
  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const written = await this.#write(this.#queue);
      for (const entry of this.#queue.splice(0, written)) this.#deliver(entry);
    }
    this.#flushing = false;
  }

  /**
   * What the store keeps of `entries`: the messages of each room, and the
   * record of each room they (or a change of epoch) touch, numbered up to
   * the newest seq the batch stores, never past it.
   */
  #batchOf(entries: readonly Entry[]): { batch: Batch; newest: Map<LogState, number> } {
    const messages = new Map<LogState, StoredMessage[]>();
    for (const entry of entries) {
      if (!isStored(entry)) continue;
      const message = { note: entry.note, seq: entry.seq };
      const list = messages.get(entry.log);
      if (list === undefined) messages.set(entry.log, [message]);
      else list.push(message);
    }
    // Seqs are given in the order published: a room's newest is its last.
    const newest = new Map<LogState, number>();
    for (const [roomLog, list] of messages) {
      newest.set(roomLog, Math.max(roomLog.stored, list.at(-1)!.seq));
    }
    // Rooms whose record waits (a new epoch, say) go along, so many at a time at most.
    let keys = 0;
    for (const roomLog of this.#dirty) {
      if (newest.has(roomLog)) continue;
      if ((keys += keyBytes(logKey(roomLog.name))) > RECORD_KEYS_PER_BATCH) break;
      newest.set(roomLog, roomLog.stored);
    }
    const rooms = [...newest].map(([roomLog, lastSeq]) => {
      const { name, life, epoch } = roomLog;
      return { room: { name, life, epoch, lastSeq }, messages: messages.get(roomLog) ?? [] };
    });
    return {
      batch: { rooms, settles: [...this.#dirty].every((roomLog) => newest.has(roomLog)) },
      newest,
    };
  }

  /**
   * Stores as many of `entries` as fit one atomic write, from the first,
   * with every room record not yet stored, and says how many that was. A
   * failure is logged, counted and told to users, never thrown: those
   * messages are delivered anyway, from memory.
   */
  #write(entries: readonly Entry[]): Promise<number> {
    const store = this.#store;
    if (store === undefined) return Promise.resolve(entries.length);
    return this.#inTurn(async () => {
      // A backlog is cut at its likely size first: planning encodes what it plans.
      let taken = entries.slice(0, likelyFit(entries));
      if (!taken.some(isStored) && this.#dirty.size === 0) return taken.length;
      // A room whose messages went unsaved starts a new epoch with its next stored one.
      for (const roomLog of this.#unsaved) roomLog.epoch = randomId();
      let { batch, newest } = this.#batchOf(taken);
      let plan = store.plan(batch);
      while (!plan.fits && taken.length > 1) {
        taken = taken.slice(0, Math.ceil(taken.length / 2));
        ({ batch, newest } = this.#batchOf(taken));
        plan = store.plan(batch);
      }
      try {
        await store.commit(plan);
      } catch (error) {
        const unsaved = taken.filter(isStored);
        this.#metrics?.historyWriteFailures.inc();
        this.#metrics?.historyUnsaved.inc(unsaved.length);
        for (const roomLog of newest.keys()) this.#dirty.add(roomLog);
        for (const entry of unsaved) this.#unsaved.add(entry.log);
        if (this.#saving) {
          this.#saving = false;
          log.error("Cannot store room history, serving from memory: {error}", { error });
          this.#handler?.setHistorySaved(false);
          await store.markFailing();
        }
        return taken.length;
      }
      for (const [roomLog, seq] of newest) {
        roomLog.stored = seq;
        this.#dirty.delete(roomLog);
      }
      this.#unsaved.clear();
      if (!this.#saving) {
        this.#saving = true;
        log.info("Room history is stored again");
        this.#handler?.setHistorySaved(true);
      }
      return taken.length;
    });
  }

  #deliver(entry: Entry): void {
    if (isMessage(entry)) {
      this.#handler?.deliverRoomNote(entry.note, { epoch: entry.log.epoch, seq: entry.seq });
    } else {
      this.#handler?.deliverRoomNote(entry.note);
    }
  }

  /** Runs `write` after every store write started before it. */
  #inTurn<T>(write: () => Promise<T>): Promise<T> {
    const next = this.#writes.then(write);
    // The caller of this write handles its failure; the next write waits either way.
    this.#writes = next.then(() => undefined, () => undefined);
    return next;
  }

  /** Runs a deletion in the background; a failure is logged, and close() waits for it. */
  #cleanUp(task: () => Promise<void>): void {
    const running = task().catch((error) => {
      if (this.#closing.signal.aborted) return;
      log.error("Cannot remove stored history: {error}", { error });
    }).finally(() => this.#cleanups.delete(running));
    this.#cleanups.add(running);
  }
}
