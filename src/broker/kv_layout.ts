/**
 * How the history store lays a room's log out in Deno KV: pages of
 * consecutive messages (one value each, within KV's size limit), and the
 * checks every record read back passes.
 *
 * @module
 */

import { nameKey } from "../text/names.ts";
import { DecodeError, fields, roomNote, text, whole } from "./decode.ts";
import type { Batch, StoredMessage, StoredRoom } from "./kv_store.ts";
import type { MessageNote } from "./types.ts";

/** The largest seq read back: far past any the server reaches, and still counted exactly. */
const MAX_SEQ = 2 ** 50;
/** ...and values of at most 64 KiB. */
export const MAX_PAGE_BYTES = 48 * 1024;
/** A generous bound on the size of a key and a note's envelope, besides its text. */
export const NOTE_OVERHEAD_BYTES = 512;

/** A page as stored: its messages, the first numbered `first`, the next `first + 1`, ... */
export interface Page {
  readonly first: number;
  readonly notes: readonly MessageNote[];
}

/** Where a page is: its room's key and life, and the seqs it holds. */
export interface PageRange {
  readonly first: number;
  readonly last: number;
}

/** The upper bound of a note's stored size, in bytes. */
export function noteBytes(note: MessageNote): number {
  return NOTE_OVERHEAD_BYTES + note.text.length * 3 + note.author.name.length * 3;
}

/** The messages of a batch by room life, each room's in order, with its newest record. */
export function groupByRoom(
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
export function paginate(messages: readonly StoredMessage[]): (Page & { bytes: number })[] {
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
  if (key.length !== 2 || key[1] !== nameKey(room.name)) {
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
  const list = record.notes;
  if (!Array.isArray(list) || list.length === 0) {
    throw new DecodeError("a page holds no list of messages");
  }
  const notes = list.map((item) => {
    const note = roomNote(item);
    if (note.kind !== "message") throw new DecodeError("a page holds something not a message");
    if (nameKey(note.room) !== room) throw new DecodeError("a page holds another room's message");
    return note;
  });
  return { first, notes };
}
