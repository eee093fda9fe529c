/**
 * How the history store lays a room's log out in Deno KV: pages of
 * consecutive messages (one value each, within KV's size limit), what one
 * atomic write may hold, and the checks every record read back passes.
 *
 * @module
 */

import { DecodeError, fields, roomNote, text, whole } from "./decode.ts";
import type { StoredMessage, StoredRoom } from "./kv_store.ts";
import { logKey, type MessageNote } from "./types.ts";

/** The largest seq read back: far past any the server reaches, and still counted exactly. */
const MAX_SEQ = 2 ** 50;
/** ...and values of at most 64 KiB. */
export const MAX_PAGE_BYTES = 48 * 1024;
/** A generous bound on the size of a key and a note's envelope, besides its text. */
export const NOTE_OVERHEAD_BYTES = 512;

/**
 * Deno KV takes at most 1,000 mutations, 800 KiB of keys and values, and
 * 80 KiB of keys in one atomic operation; a room's key can take a kilobyte.
 */
export const MAX_MUTATIONS = 900;
export const MAX_BATCH_BYTES = 600 * 1024;
export const MAX_KEY_BYTES = 64 * 1024;
/** Records of rooms without messages in a batch written with it: this many keys' bytes at most. */
export const RECORD_KEYS_PER_BATCH = 16 * 1024;

/** At least the bytes of a key naming room `key` (its UTF-8, the other parts, the encoding's tags). */
export function keyBytes(key: string): number {
  return 64 + 3 * key.length;
}

/** One mutation of an atomic write: a value to set (or none, to delete), and its sizes. */
export interface Write {
  readonly key: Deno.KvKey;
  readonly value?: unknown;
  readonly bytes: number;
  readonly keyBytes: number;
}

/** Whether `writes` fit one atomic operation of Deno KV. */
export function withinLimits(writes: readonly Write[]): boolean {
  let bytes = 0;
  let keys = 0;
  for (const write of writes) {
    bytes += write.bytes + write.keyBytes;
    keys += write.keyBytes;
  }
  return writes.length <= MAX_MUTATIONS && bytes <= MAX_BATCH_BYTES && keys <= MAX_KEY_BYTES;
}

/** A page read back: its messages, the first numbered `first`, the next `first + 1`, ... */
export interface Page {
  readonly first: number;
  readonly notes: readonly MessageNote[];
}

/** Where a page is: its room's key and life, and the seqs it holds. */
export interface PageRange {
  readonly first: number;
  readonly last: number;
}

/**
 * A page ready to write. Its notes are stored as their JSON in UTF-8: one
 * byte string costs Deno KV far less to take than as many objects (pages
 * written before 2026-12 hold the objects, and still read back).
 */
export interface EncodedPage extends PageRange {
  readonly value: { readonly first: number; readonly notes: Uint8Array };
  /** The value's size, in bytes. */
  readonly bytes: number;
}

/** The upper bound of a note's stored size, in bytes (clean text is never over 3 per UTF-16 unit). */
export function noteBytes(note: MessageNote): number {
  return NOTE_OVERHEAD_BYTES + note.text.length * 3 + note.author.name.length * 3 +
    (changeUnits(note) + (note.to?.length ?? 0)) * 3;
}

/** The UTF-16 units of what changes an earlier message, with its keys (0 for a plain message). */
export function changeUnits(note: MessageNote): number {
  const { change } = note;
  return change === undefined ? 0 : 64 + change.target.length + change.author.length;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** About the UTF-16 units of a note's JSON besides its strings (keys, numbers, punctuation). */
const NOTE_JSON_UNITS = 128;

/** About the size of a note's JSON, in UTF-16 units (its bytes when it is ASCII). */
export function jsonUnits(note: MessageNote): number {
  return NOTE_JSON_UNITS + note.room.length + note.id.length + note.author.instance.length +
    note.author.name.length + note.text.length + changeUnits(note) + (note.to?.length ?? 0);
}

/**
 * Splits a room's messages (in seq order) into pages of consecutive seqs
 * that fit in one value: cut by their likely size, then halved while one's
 * encoding is over (text far from ASCII takes up to three bytes a unit).
 */
export function paginate(messages: readonly StoredMessage[]): EncodedPage[] {
  const pages: EncodedPage[] = [];
  let run: MessageNote[] = [];
  let first = 0;
  let units = 0;
  for (const { note, seq } of messages) {
    const size = jsonUnits(note);
    if (run.length > 0 && (seq !== first + run.length || units + size > MAX_PAGE_BYTES)) {
      pages.push(...encodePages(first, run));
      run = [];
      units = 0;
    }
    if (run.length === 0) first = seq;
    run.push(note);
    units += size;
  }
  if (run.length > 0) pages.push(...encodePages(first, run));
  return pages;
}

/** `notes` (from seq `first` on) as one page, or halved until each half fits. */
function encodePages(first: number, notes: readonly MessageNote[]): EncodedPage[] {
  const encoded = encoder.encode(JSON.stringify(notes));
  if (encoded.length <= MAX_PAGE_BYTES || notes.length === 1) {
    const value = { first, notes: encoded };
    const last = first + notes.length - 1;
    return [{ first, last, value, bytes: encoded.length + NOTE_OVERHEAD_BYTES }];
  }
  const half = Math.ceil(notes.length / 2);
  return [
    ...encodePages(first, notes.slice(0, half)),
    ...encodePages(first + half, notes.slice(half)),
  ];
}

/** A room's record, checked. */
export function storedRoom(key: Deno.KvKey, value: unknown): StoredRoom {
  const record = fields(value, "a room's record");
  const room: StoredRoom = {
    name: text(record, "name", "a room's record", 256),
    life: text(record, "life", "a room's record", 64),
    epoch: text(record, "epoch", "a room's record", 64),
    lastSeq: whole(record, "lastSeq", "a room's record"),
  };
  if (room.lastSeq < 0 || room.lastSeq > MAX_SEQ) {
    throw new DecodeError("a room's record has a seq below 0 or past any the server gives");
  }
  if (key.length !== 2 || key[1] !== logKey(room.name)) {
    throw new DecodeError("a room's record is filed under another room's key");
  }
  return room;
}

/**
 * A page of messages of the room `key`, checked: filed under its first seq,
 * after the page before it (`after`), holding messages of this room only.
 */
export function storedPage(key: Deno.KvKey, value: unknown, room: string, after: number): Page {
  const record = fields(value, "a page of messages");
  const first = whole(record, "first", "a page of messages");
  if (key[3] !== first) throw new DecodeError("a page is filed under a seq it does not start at");
  if (first < 1 || first > MAX_SEQ) {
    throw new DecodeError("a page starts at a seq the server never gives");
  }
  if (first <= after) throw new DecodeError("a page overlaps the page before it");
  const list = record.notes instanceof Uint8Array ? parseNotes(record.notes) : record.notes;
  if (!Array.isArray(list) || list.length === 0) {
    throw new DecodeError("a page holds no list of messages");
  }
  const notes = list.map((item) => {
    const note = roomNote(item);
    if (note.kind !== "message") throw new DecodeError("a page holds something not a message");
    if (logKey(note.room) !== room) throw new DecodeError("a page holds another room's message");
    return note;
  });
  return { first, notes };
}

/** The notes of a page as written since 2026-12: a JSON list in UTF-8. */
function parseNotes(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new DecodeError("a page's messages are not JSON in UTF-8");
  }
}
