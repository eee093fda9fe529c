/**
 * What instances send each other through NATS, read as carefully as client
 * frames: every message is parsed and checked field by field, and anything
 * else (a bug, another program on the subjects) is refused with the reason,
 * never cast and never allowed to throw further in.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAX_NAME_UNITS } from "../../text/names.ts";
import { seen, type SeenPosition } from "../../vocabulary/arguments.ts";
import {
  author,
  DecodeError,
  type Fields,
  fields,
  message,
  moderationRecord,
  text,
  time,
  whole,
} from "../decode.ts";
import {
  type DeviceOpening,
  type KickNote,
  type KickResult,
  MAX_OPENING_ROOM,
  type ModerationRecord,
  type PrivateNote,
  type TypingNote,
} from "../types.ts";

const log = getLogger(["chat", "cluster"]);

/**
 * Reports what could not be read: each is counted; a line is logged at most
 * once a second (saying how many went unsaid since), so a flood of garbage
 * on the subjects cannot flood the log too.
 */
export function malformedReporter(
  count: () => void,
): (subject: string, error: unknown) => void {
  let loggedAt = -Infinity;
  let unsaid = 0;
  return (subject, error) => {
    count();
    const now = Date.now();
    if (now - loggedAt < 1000) {
      unsaid++;
      return;
    }
    log.warning("Dropped a message on {subject} that could not be read: {error}{more}", {
      subject,
      error: error instanceof Error ? error.message : String(error),
      more: unsaid === 0 ? "" : ` (and ${unsaid} more since the last such line)`,
    });
    loggedAt = now;
    unsaid = 0;
  };
}

/** KV keys allow only a few characters, so keys are stored base64url-encoded. */
export function bucketKey(key: string): string {
  const bytes = new TextEncoder().encode(key);
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
}

/** The key a {@linkcode bucketKey} was made from. */
export function decodeBucketKey(key: string): string {
  const base64 = key.replaceAll("-", "+").replaceAll("_", "/");
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (char) => char.charCodeAt(0)));
}

/** What the names bucket holds for each name. */
export interface NameEntry {
  readonly name: string;
  readonly room: string;
  readonly instance: string;
  readonly userId: number;
  /** What its user may moderate (0 when an older instance wrote the entry). */
  readonly rank: number;
}

/**
 * A request to hand a session over: the session's token, or `verified` when
 * the new connection's signed token (auth) names the user.
 */
export interface TakeoverRequest {
  readonly name: string;
  readonly token: string;
  readonly verified: boolean;
}

/** The answer to a {@linkcode TakeoverRequest}: where the session was, or a refusal. */
export type TakeoverReply =
  | {
    readonly ok: true;
    readonly room: string;
    readonly privates: readonly PrivateNote[];
    readonly read?: ReadonlyMap<string, SeenPosition>;
  }
  | { readonly ok: false };

export function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new DecodeError("not JSON");
  }
}

/** A moderation record from the shared bucket, checked. */
export function readModerationRecord(data: string): ModerationRecord {
  return moderationRecord(parse(data));
}

/** A private message, its text at most `maxText` characters long (`max_message_len`). */
export function readPrivateNote(data: string, maxText: number): PrivateNote {
  return privateNote(parse(data), maxText);
}

function privateNote(value: unknown, maxText: number): PrivateNote {
  const record = fields(value, "a private message");
  return {
    id: text(record, "id", "a private message", 128),
    sentAt: time(record, "sentAt", "a private message"),
    from: text(record, "from", "a private message", MAX_NAME_UNITS),
    to: text(record, "to", "a private message", MAX_NAME_UNITS),
    text: message(record, "text", "a private message", maxText),
  };
}

export function readNameEntry(data: string): NameEntry {
  const record = fields(parse(data), "a name entry");
  return {
    name: text(record, "name", "a name entry", MAX_NAME_UNITS),
    room: text(record, "room", "a name entry", 256),
    instance: text(record, "instance", "a name entry", 64),
    userId: whole(record, "userId", "a name entry"),
    rank: record.rank === undefined ? 0 : whole(record, "rank", "a name entry"),
  };
}

/** The longest typing note read, in UTF-16 units: longer ones are refused unparsed. */
const MAX_TYPING_UNITS = 1024;

export function readTypingNote(data: string): TypingNote {
  if (data.length > MAX_TYPING_UNITS) throw new DecodeError("a typing note is too long");
  const record = fields(parse(data), "a typing note");
  return {
    room: text(record, "room", "a typing note", 256),
    sentAt: time(record, "sentAt", "a typing note"),
    author: author(record.author),
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
    verified: record.verified === true,
  };
}

export function readKickNote(data: string): KickNote {
  const record = fields(parse(data), "a kick");
  const notice = record.notice;
  if (notice !== "kicked" && notice !== "banned") {
    throw new DecodeError('a kick needs a "notice" of kicked or banned');
  }
  return {
    name: text(record, "name", "a kick", MAX_NAME_UNITS),
    by: text(record, "by", "a kick", MAX_NAME_UNITS),
    byRank: whole(record, "byRank", "a kick"),
    reason: text(record, "reason", "a kick", 4096),
    notice,
  };
}

/** A question for an instance: the rank of its user of this name. */
export function readRankRequest(data: string): string {
  return text(fields(parse(data), "a rank request"), "name", "a rank request", 256);
}

/** The answer to a {@linkcode readRankRequest}: a rank, or `undefined` when nobody has the name. */
export function readRankReply(data: string): number | undefined {
  const record = fields(parse(data), "a rank's answer");
  return record.rank === null ? undefined : whole(record, "rank", "a rank's answer");
}

/** The answer to a kick sent to the target's instance. */
export function readKickResult(data: string): KickResult {
  const result = fields(parse(data), "a kick's answer").result;
  if (
    result === "done" || result === "outranked" || result === "not_found" ||
    result === "unavailable"
  ) return result;
  throw new DecodeError(
    'a kick\'s answer needs a "result" of done, outranked, not_found or unavailable',
  );
}

/** The answer to a takeover, its kept private messages at most `maxText` characters long. */
export function readTakeoverReply(data: string, maxText: number): TakeoverReply {
  const record = fields(parse(data), "a takeover reply");
  if (record.ok !== true) return { ok: false };
  const privates = record.privates;
  if (!Array.isArray(privates)) throw new DecodeError('a takeover reply needs a list "privates"');
  const read = record.read === undefined ? undefined : seen().fromJson(record.read);
  if (record.read !== undefined && read === undefined) {
    throw new DecodeError('a takeover reply\'s "read" must map rooms to {"epoch", "seq"}');
  }
  return {
    ok: true,
    room: text(record, "room", "a takeover reply", 256),
    privates: privates.map((value) => privateNote(value, maxText)),
    read,
  };
}

/** The close codes below 3000 a server may send (the rest are reserved). */
const SENDABLE_CODES = new Set([
  1000,
  1001,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
]);

/** One part of what goes through a link (`k`: frame, binary frame, close, ping). */
export interface Part {
  readonly id: string;
  readonly n: number;
  readonly k: "f" | "b" | "c" | "p";
  /** A frame's text, or a part of it when `more`. */
  readonly d?: string;
  readonly more?: boolean;
  readonly code?: number;
  readonly reason?: string;
}

/** A request to take a device, as another instance sends it. */
export function readOpening(data: string): DeviceOpening & { id: string; from: string } {
  const record = fields(parse(data), "a device's opening");
  const protocol = record.protocol;
  if (protocol !== "v1" && protocol !== "v2") {
    throw new DecodeError('a device\'s opening needs a "protocol" of v1 or v2');
  }
  const optional = (key: string, max: number) =>
    record[key] === undefined ? undefined : text(record, key, "a device's opening", max);
  return {
    id: token(record, "id"),
    from: token(record, "from"),
    name: text(record, "name", "a device's opening", MAX_NAME_UNITS),
    protocol,
    address: optional("address", 64),
    room: optional("room", MAX_OPENING_ROOM),
    token: optional("token", 64 * 1024),
  };
}

/** A link's id or an instance's: a part of a subject, so letters, digits, `-` and `_` only. */
function token(record: Fields, key: string): string {
  const value = text(record, key, "a device's opening", 64);
  if (!/^[\w-]+$/.test(value)) throw new DecodeError(`a device's opening has a bad "${key}"`);
  return value;
}

/** One part of what a link carries. */
export function readPart(data: string): Part {
  const record = fields(parse(data), "a relayed part");
  const k = record.k === "f" || record.k === "b" || record.k === "c" || record.k === "p"
    ? record.k
    : undefined;
  if (k === undefined) throw new DecodeError('a relayed part needs a "k" of f, b, c or p');
  const part: Part = {
    id: text(record, "id", "a relayed part", 64),
    n: whole(record, "n", "a relayed part"),
    k,
  };
  if (k === "f") {
    return { ...part, d: text(record, "d", "a relayed part"), more: record.more === true };
  }
  if (k !== "c") return part;
  const code = whole(record, "code", "a relayed close");
  if (!SENDABLE_CODES.has(code) && !(code >= 3000 && code <= 4999)) {
    throw new DecodeError(`a relayed close has a code no socket may send: ${code}`);
  }
  const reason = text(record, "reason", "a relayed close", 123);
  // A socket's close reason holds 123 bytes of UTF-8, at most.
  if (new TextEncoder().encode(reason).length > 123) {
    throw new DecodeError("a relayed close has a reason longer than 123 bytes");
  }
  return { ...part, code, reason };
}
