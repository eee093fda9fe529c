/**
 * Protocol v2 (WebSocket subprotocol `chat.v2`): typed JSON both ways. The
 * client opens a session with `hello` or `resume`, then sends requests such
 * as `{"type":"say","text":"hi"}`; every event is a JSON object with a `type`.
 * See docs/protocol.md.
 *
 * @module
 */

import type { ChatEvent, MessageEvent, SessionStart } from "../vocabulary/events.ts";
import { COMMANDS } from "../vocabulary/commands.ts";
import { type Arg, readPosition, type SeenPosition } from "../vocabulary/arguments.ts";
import {
  type ClientRequest,
  isRequestType,
  REQUEST_TYPES,
  type RequestProblem,
  type RequestType,
  specOf,
} from "../vocabulary/requests.ts";
import { decodeCommand } from "./v1.ts";

/** The subprotocol name a client offers to speak v2. */
export const V2_PROTOCOL = "chat.v2";

/**
 * One request of a client frame: the start of a session (`hello` or
 * `resume`), or a request to the chat; a malformed one is an `invalid`
 * request saying why.
 */
export type V2Input =
  /** `hello` or `resume`; `auth` is the signed token, in token mode. */
  | { readonly kind: "start"; readonly start: SessionStart; readonly auth?: string }
  | { readonly kind: "request"; readonly request: ClientRequest };

/** The JSON object sent for `event`, whose time is `sentAt` (ISO 8601). */
function toWire(event: ChatEvent, sentAt: string): Record<string, unknown> {
  if (event.type === "message" || event.type === "history") {
    if (event.change !== undefined || event.edited || event.removed) {
      return changedToWire(event, sentAt);
    }
    // The hot path: one object literal, no spread.
    const { type, id, room, epoch, from, text, seq } = event;
    return event.emote
      ? { type, id, sentAt, room, epoch, from, text, seq, emote: true }
      : { type, id, sentAt, room, epoch, from, text, seq };
  }
  const base = { type: event.type, id: event.id, sentAt };
  switch (event.type) {
    case "welcome": {
      const { room, epoch, name, token, rank } = event;
      const welcome = { ...base, room, epoch, name, token, text: event.body };
      return rank === undefined ? welcome : { ...welcome, rank };
    }
    case "private": {
      const { from, to, text, epoch, seq } = event;
      if (seq === undefined) return { ...base, from, to, text };
      // Kept in the account's inbox: where, to resume after it; replayed ones say so.
      const kept = { ...base, from, to, text, epoch, seq };
      return event.origin === "HISTORY" ? { ...kept, history: true } : kept;
    }
    case "presence": {
      const { room, epoch, action, from, oldName, by, reason } = event;
      const presence = { ...base, room, epoch, action, from };
      if (oldName !== undefined) return { ...presence, oldName, text: event.body };
      if (by !== undefined) return { ...presence, by, reason, text: event.body };
      return { ...presence, text: event.body };
    }
    case "system": {
      const system = event.room === undefined
        ? { ...base, text: event.text }
        : { ...base, room: event.room, epoch: event.epoch, text: event.text };
      return event.rank === undefined ? system : { ...system, rank: event.rank };
    }
    case "error":
      return { ...base, code: event.code, text: event.text };
    case "rooms":
      return { ...base, rooms: event.rooms };
    case "members":
      return { ...base, room: event.room, epoch: event.epoch, members: event.members };
    case "gap":
      return {
        ...base,
        room: event.room,
        epoch: event.epoch,
        reason: event.reason,
        text: event.body,
      };
    case "help":
      return { ...base, commands: event.commands, text: event.body };
    case "typing":
      return { ...base, room: event.room, from: event.from };
  }
}

/**
 * An entry that changes an earlier message (`edit` or `delete`, live or
 * replayed alike: applying one twice changes nothing), or a kept message
 * that was edited (`edited`) or removed (`removed`, its text empty) since.
 */
function changedToWire(event: MessageEvent, sentAt: string): Record<string, unknown> {
  const { type, id, room, epoch, from, text, seq, change } = event;
  if (change === undefined) {
    const shown = { type, id, sentAt, room, epoch, from, text, seq };
    if (event.removed) return { ...shown, removed: true };
    return event.emote ? { ...shown, emote: true, edited: true } : { ...shown, edited: true };
  }
  const { action, target, author } = change;
  return action === "edit"
    ? { type: "edit", id, sentAt, room, epoch, seq, from, target, text }
    : { type: "delete", id, sentAt, room, epoch, seq, from, target, author };
}

/**
 * The JSON of one event, whose time is `sentAt` (ISO 8601); a frame holds
 * one, or an array of several. Every recipient gets the same JSON: the
 * author's copy of a message differs only in `origin`, which v2 does not carry.
 */
export function encodeV2Event(event: ChatEvent, sentAt: string): string {
  return JSON.stringify(toWire(event, sentAt));
}

type Fields = Record<string, unknown>;

function stringField(fields: Fields, key: string): string | undefined {
  const value = fields[key];
  return typeof value === "string" ? value : undefined;
}

/** An optional string field: its value, `undefined` when absent, `null` when not a string. */
function optionalText(fields: Fields, key: string): string | undefined | null {
  const value = fields[key];
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : null;
}

function request(value: ClientRequest): V2Input {
  return { kind: "request", request: value };
}

function invalid(reason: string): V2Input {
  return request({ type: "invalid", problem: { code: "bad_request", reason } });
}

function needs(type: string, field: string): V2Input {
  return invalid(`"${type}" needs a string "${field}"`);
}

/** Reads `privates` of `resume`: the last private message seen, `{"epoch", "seq"}`. */
function decodePrivates(value: unknown): SeenPosition | string | undefined {
  if (value === undefined) return undefined;
  return readPosition(value) ??
    '"privates" must be {"epoch", "seq"}: the last private message you saw';
}

/**
 * Reads `resume`: `room` says where the client was and the last message it
 * saw there (`{"name", "epoch", "seq"}`), and `privates` (token mode) the
 * last private message it saw; clients from before epochs send `rooms`, one
 * room name mapped to a seq.
 */
function decodeResume(fields: Fields): V2Input {
  const name = stringField(fields, "name");
  if (name === undefined) return needs("resume", "name");
  const token = stringField(fields, "token");
  const auth = optionalText(fields, "auth");
  if (auth === null) return needs("resume", "auth");
  const privates = decodePrivates(fields.privates);
  if (typeof privates === "string") return invalid(privates);
  const resumable = true;
  if (fields.room !== undefined) {
    const room = fields.room;
    if (typeof room !== "object" || room === null || Array.isArray(room)) {
      return invalid('"room" must be {"name", "epoch", "seq"}: where you were and what you saw');
    }
    const { name: roomName, epoch, seq = 0 } = room as Fields;
    if (typeof roomName !== "string") return invalid('"room" needs a string "name"');
    if (epoch !== undefined && typeof epoch !== "string") {
      return invalid('"room" needs a string "epoch", from the last welcome, members or history');
    }
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) {
      return invalid('"seq" in "room" must be a whole number of at least 0');
    }
    return {
      kind: "start",
      start: {
        name,
        token,
        room: roomName,
        epoch,
        lastSeq: seq as number,
        resumable,
        resuming: true,
        ...(privates === undefined ? {} : { privates }),
      },
      ...(auth === undefined ? {} : { auth }),
    };
  }
  const rooms = fields.rooms ?? {};
  if (typeof rooms !== "object" || rooms === null || Array.isArray(rooms)) {
    return invalid('"rooms" must map a room name to the last seq seen there');
  }
  const entries = Object.entries(rooms);
  if (entries.length > 1) return invalid('"rooms" may name one room, the one to return to');
  const [room, lastSeq] = entries[0] ?? [undefined, undefined];
  if (lastSeq !== undefined && (!Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0)) {
    return invalid('a seq in "rooms" must be a whole number of at least 0');
  }
  return {
    kind: "start",
    start: {
      name,
      token,
      room,
      lastSeq: lastSeq as number | undefined,
      resumable,
      resuming: true,
      ...(privates === undefined ? {} : { privates }),
    },
    ...(auth === undefined ? {} : { auth }),
  };
}

/** Most requests one client frame may carry. */
export const MAX_REQUESTS_PER_FRAME = 256;

/**
 * Reads one client frame: a request, or a JSON array of them (a client that
 * coalesces its sends, as the server does). Anything malformed comes back as
 * an `invalid` request with the reason.
 */
export function decodeV2Frame(text: string): V2Input[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [invalid("the frame is not JSON")];
  }
  if (!Array.isArray(parsed)) return [decodeRequest(parsed)];
  if (parsed.length > MAX_REQUESTS_PER_FRAME) {
    return [invalid(`a frame may carry at most ${MAX_REQUESTS_PER_FRAME} requests`)];
  }
  return parsed.map(decodeRequest);
}

function decodeRequest(parsed: unknown): V2Input {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return invalid('a request must be a JSON object with a "type"');
  }
  const fields = parsed as Fields;
  const type = fields.type;
  switch (type) {
    case "hello": {
      const { name, room, auth } = fields;
      if (name !== undefined && typeof name !== "string") return needs(type, "name");
      if (room !== undefined && typeof room !== "string") return needs(type, "room");
      if (auth !== undefined && typeof auth !== "string") return needs(type, "auth");
      const start = { name, room, resumable: true };
      return auth === undefined ? { kind: "start", start } : { kind: "start", start, auth };
    }
    case "resume":
      return decodeResume(fields);
    case "command": {
      const text = stringField(fields, "text");
      return text === undefined ? needs(type, "text") : request(decodeCommand(text));
    }
  }
  if (!isRequestType(type)) {
    return invalid(
      typeof type === "string"
        ? `unknown type ${JSON.stringify(type.slice(0, 32))}`
        : 'the frame needs a string "type"',
    );
  }
  return request(readFields(type, fields));
}

/** Each request's arguments, listed once rather than on every request read. */
const ARGS = Object.fromEntries(
  REQUEST_TYPES.map((type) => [type, Object.entries(specOf(type).args)]),
) as Record<RequestType, [string, Arg<unknown>][]>;

/**
 * Reads the arguments of a request of type `type` from JSON fields, as the
 * request table declares them (the server API reads its bodies the same
 * way). A missing or blank argument gets the request's usage, as its `!`
 * command would; one of the wrong type or out of bounds says what it must be.
 */
export function readFields(type: RequestType, fields: Record<string, unknown>): ClientRequest {
  const values: Record<string, unknown> = {};
  for (const [key, arg] of ARGS[type]) {
    const given = fields[key];
    const value = given === undefined ? undefined : arg.fromJson(given);
    if (value !== undefined) {
      values[key] = value;
      continue;
    }
    const blank = given === undefined || (typeof given === "string" && given.trim() === "");
    // A blank optional argument is left out, as a command's trailing spaces are.
    if (blank && arg.optional) continue;
    const command = COMMANDS.find((command) => command.type === type);
    const problem: RequestProblem = blank && command !== undefined
      ? { code: "usage", usage: command.usage }
      : { code: "bad_request", reason: `"${type}" needs "${key}": ${arg.expected}` };
    return { type: "invalid", problem };
  }
  return { type, ...values } as ClientRequest;
}
