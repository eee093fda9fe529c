/**
 * What instances send each other through NATS, read as carefully as client
 * frames: every message is parsed and checked field by field, and anything
 * else (a bug, another program on the subjects) is refused with the reason,
 * never cast and never allowed to throw further in.
 *
 * @module
 */

import { nameKey } from "../names.ts";
import type { Author, PrivateNote, RoomNote } from "./types.ts";

/** A cluster message that could not be read. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** What the names bucket holds for each name. */
export interface NameEntry {
  readonly name: string;
  readonly room: string;
  readonly instance: string;
  readonly userId: number;
}

/** A request to hand a session over, and its answer. */
export interface TakeoverRequest {
  readonly name: string;
  readonly token: string;
}

/** The answer to a {@linkcode TakeoverRequest}: where the session was, or a refusal. */
export type TakeoverReply =
  | { readonly ok: true; readonly room: string; readonly privates: readonly PrivateNote[] }
  | { readonly ok: false };

type Fields = Record<string, unknown>;

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new WireError("not JSON");
  }
}

function fields(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new WireError(`${what} is not an object`);
  }
  return value as Fields;
}

function text(record: Fields, key: string, what: string, max = 1_000_000): string {
  const value = record[key];
  if (typeof value !== "string" || value.length > max) {
    throw new WireError(`${what} needs a string "${key}"`);
  }
  return value;
}

function whole(record: Fields, key: string, what: string): number {
  const value = record[key];
  if (!Number.isSafeInteger(value)) throw new WireError(`${what} needs a whole number "${key}"`);
  return value as number;
}

function author(value: unknown): Author {
  const record = fields(value, "an author");
  return {
    instance: text(record, "instance", "an author", 64),
    userId: whole(record, "userId", "an author"),
    name: text(record, "name", "an author", 256),
  };
}

const NOTICES = new Set(["connected", "disconnected", "joined", "left", "renamed"]);
const ACTIONS = new Set(["join", "leave", "rename"]);

/** One room note, checked. */
function roomNote(value: unknown): RoomNote {
  const record = fields(value, "a room note");
  const common = {
    room: text(record, "room", "a room note", 256),
    id: text(record, "id", "a room note", 128),
    sentAt: whole(record, "sentAt", "a room note"),
    author: author(record.author),
  };
  if (record.kind === "message") {
    const emote = record.emote;
    if (typeof emote !== "boolean") throw new WireError('a message needs a boolean "emote"');
    return { kind: "message", ...common, text: text(record, "text", "a message"), emote };
  }
  if (record.kind === "presence") {
    const action = text(record, "action", "a presence note", 16);
    const notice = text(record, "notice", "a presence note", 16);
    if (!ACTIONS.has(action) || !NOTICES.has(notice)) {
      throw new WireError("a presence note has an unknown action or notice");
    }
    const oldName = record.oldName === undefined
      ? undefined
      : text(record, "oldName", "a presence note", 256);
    return {
      kind: "presence",
      ...common,
      action: action as "join" | "leave" | "rename",
      notice: notice as "connected" | "disconnected" | "joined" | "left" | "renamed",
      oldName,
    };
  }
  throw new WireError('a room note needs a "kind" of message or presence');
}

/** A batch of room notes of `room`, as one stream message holds them. */
export function readRoomNotes(data: string, room: string): RoomNote[] {
  const value = parse(data);
  if (!Array.isArray(value) || value.length === 0) {
    throw new WireError("a batch of room notes is not a list");
  }
  const notes = value.map(roomNote);
  const key = nameKey(room);
  if (notes.some((note) => note.room !== room && nameKey(note.room) !== key)) {
    throw new WireError("a batch holds a note of another room");
  }
  return notes;
}

export function readPrivateNote(data: string): PrivateNote {
  const record = fields(parse(data), "a private message");
  return {
    id: text(record, "id", "a private message", 128),
    sentAt: whole(record, "sentAt", "a private message"),
    from: text(record, "from", "a private message", 256),
    to: text(record, "to", "a private message", 256),
    text: text(record, "text", "a private message"),
  };
}

export function readNameEntry(data: string): NameEntry {
  const record = fields(parse(data), "a name entry");
  return {
    name: text(record, "name", "a name entry", 256),
    room: text(record, "room", "a name entry", 256),
    instance: text(record, "instance", "a name entry", 64),
    userId: whole(record, "userId", "a name entry"),
  };
}

export function readHeartbeat(data: string): string {
  return text(fields(parse(data), "a heartbeat"), "instance", "a heartbeat", 64);
}

export function readTakeoverRequest(data: string): TakeoverRequest {
  const record = fields(parse(data), "a takeover request");
  return {
    name: text(record, "name", "a takeover request", 256),
    token: text(record, "token", "a takeover request", 256),
  };
}

export function readTakeoverReply(data: string): TakeoverReply {
  const record = fields(parse(data), "a takeover reply");
  if (record.ok !== true) return { ok: false };
  const privates = record.privates;
  if (!Array.isArray(privates)) throw new WireError('a takeover reply needs a list "privates"');
  return {
    ok: true,
    room: text(record, "room", "a takeover reply", 256),
    privates: privates.map((value) => readPrivateNote(JSON.stringify(value))),
  };
}
