/**
 * The decoders of what a broker reads from outside the process, field by
 * field: what other instances send through NATS (`nats/wire.ts`) and what
 * the history store reads back from its file (`kv_store.ts`). Anything that
 * does not fit is refused with a {@linkcode DecodeError} saying why, never
 * cast and never allowed to throw further in.
 *
 * @module
 */

import { MAX_NAME_UNITS } from "../text/names.ts";
import type { MessageChange } from "../vocabulary/events.ts";
import {
  type Author,
  inboxOwner,
  type ModerationRecord,
  type PresenceNotice,
  type RoomNote,
} from "./types.ts";

/** Data from outside that could not be read. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

export type Fields = Record<string, unknown>;

export function fields(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError(`${what} is not an object`);
  }
  return value as Fields;
}

export function text(record: Fields, key: string, what: string, max = 1_000_000): string {
  const value = record[key];
  if (typeof value !== "string" || value.length > max) {
    throw new DecodeError(`${what} needs a string "${key}"`);
  }
  return value;
}

/**
 * Text of at most `max` code points, as `max_message_len` counts: refused
 * unread past twice that many UTF-16 units, counted only when in between.
 */
export function message(record: Fields, key: string, what: string, max: number): string {
  const value = text(record, key, what, 2 * max);
  if (value.length > max && [...value].length > max) {
    throw new DecodeError(`${what} has a "${key}" longer than ${max} characters`);
  }
  return value;
}

/** The latest time a JavaScript date can hold, in milliseconds since the Unix epoch. */
const LAST_TIME = 8.64e15;

/** A time in milliseconds since the Unix epoch that a date can show (others throw when shown). */
export function time(record: Fields, key: string, what: string): number {
  const value = whole(record, key, what);
  if (value < 0 || value > LAST_TIME) throw new DecodeError(`${what} has a "${key}" out of range`);
  return value;
}

export function whole(record: Fields, key: string, what: string): number {
  const value = record[key];
  if (!Number.isSafeInteger(value)) throw new DecodeError(`${what} needs a whole number "${key}"`);
  return value as number;
}

export function author(value: unknown): Author {
  const record = fields(value, "an author");
  return {
    instance: text(record, "instance", "an author", 64),
    userId: whole(record, "userId", "an author"),
    name: text(record, "name", "an author", MAX_NAME_UNITS),
  };
}

const NOTICES = new Set<string>(
  [
    "connected",
    "disconnected",
    "joined",
    "left",
    "renamed",
    "kicked",
    "banned",
  ] satisfies PresenceNotice[],
);
const ACTIONS = new Set(["join", "leave", "rename"]);

function change(value: unknown): MessageChange {
  const record = fields(value, "a message's change");
  const action = record.action;
  if (action !== "edit" && action !== "delete") {
    throw new DecodeError('a message\'s change needs an "action" of edit or delete');
  }
  return {
    target: text(record, "target", "a message's change", 128),
    action,
    author: text(record, "author", "a message's change", MAX_NAME_UNITS),
  };
}

/**
 * One room note, checked; a message's text of at most `maxText` characters
 * (what a sender could have sent under `max_message_len`).
 */
export function roomNote(value: unknown, maxText = 1_000_000): RoomNote {
  const record = fields(value, "a room note");
  const common = {
    room: text(record, "room", "a room note", 256),
    id: text(record, "id", "a room note", 128),
    sentAt: time(record, "sentAt", "a room note"),
    author: author(record.author),
  };
  if (record.kind === "message") {
    const emote = record.emote;
    if (typeof emote !== "boolean") throw new DecodeError('a message needs a boolean "emote"');
    const note = {
      kind: "message" as const,
      ...common,
      text: message(record, "text", "a message", maxText),
      emote,
    };
    // A private message is kept only in an inbox, and everything in an inbox is one.
    if ((inboxOwner(note.room) !== undefined) !== (record.to !== undefined)) {
      throw new DecodeError('a message has "to" exactly when its log is an inbox');
    }
    if (record.to !== undefined) {
      if (record.change !== undefined) throw new DecodeError("a private message is never changed");
      return { ...note, to: text(record, "to", "a private message", MAX_NAME_UNITS) };
    }
    return record.change === undefined ? note : { ...note, change: change(record.change) };
  }
  if (record.kind === "presence") {
    if (inboxOwner(common.room) !== undefined) {
      throw new DecodeError("nobody arrives in or leaves an inbox");
    }
    const action = text(record, "action", "a presence note", 16);
    const notice = text(record, "notice", "a presence note", 16);
    if (!ACTIONS.has(action) || !NOTICES.has(notice)) {
      throw new DecodeError("a presence note has an unknown action or notice");
    }
    const optional = (key: string, max: number): string | undefined =>
      record[key] === undefined ? undefined : text(record, key, "a presence note", max);
    return {
      kind: "presence",
      ...common,
      action: action as "join" | "leave" | "rename",
      notice: notice as PresenceNotice,
      oldName: optional("oldName", MAX_NAME_UNITS),
      by: optional("by", MAX_NAME_UNITS),
      reason: optional("reason", 4096),
    };
  }
  throw new DecodeError('a room note needs a "kind" of message or presence');
}

/** A moderation record, checked. */
export function moderationRecord(value: unknown): ModerationRecord {
  const record = fields(value, "a moderation record");
  const by = text(record, "by", "a moderation record", 256);
  const at = time(record, "at", "a moderation record");
  const rank = (): number => whole(record, "byRank", "a moderation record");
  switch (record.kind) {
    case "ban":
    case "mute": {
      const kind = record.kind;
      const what = `a ${kind}`;
      const name = record.name === undefined ? undefined : text(record, "name", what, 256);
      const address = record.address === undefined ? undefined : text(record, "address", what, 64);
      if (name === undefined && address === undefined) {
        throw new DecodeError(`${what} needs a "name" or an "address"`);
      }
      return {
        kind,
        name,
        address,
        for: record.for === undefined ? undefined : text(record, "for", what, 256),
        until: time(record, "until", what),
        reason: text(record, "reason", what, 4096),
        by,
        byRank: rank(),
        at,
      };
    }
    case "room":
      return {
        kind: "room",
        room: text(record, "room", "room settings", 256),
        topic: text(record, "topic", "room settings", 4096),
        slow: whole(record, "slow", "room settings"),
        by,
        at,
      };
    default:
      throw new DecodeError('a moderation record needs a "kind" of ban, mute or room');
  }
}
