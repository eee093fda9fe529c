/**
 * Protocol v2 (WebSocket subprotocol `chat.v2`): typed JSON both ways. The
 * client opens a session with `hello` or `resume`, then sends requests such
 * as `{"type":"say","text":"hi"}`; every event is a JSON object with a `type`.
 * See docs/protocol.md.
 *
 * @module
 */

import type { ChatEvent, ClientRequest, SessionStart } from "../vocabulary/events.ts";
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
  if (event.type === "message") {
    // The hot path: one object literal, no spread.
    const { type, id, room, from, text, seq } = event;
    return event.emote
      ? { type, id, sentAt, room, from, text, seq, emote: true }
      : { type, id, sentAt, room, from, text, seq };
  }
  if (event.type === "history") {
    const { type, id, room, epoch, from, text, seq } = event;
    return event.emote
      ? { type, id, sentAt, room, epoch, from, text, seq, emote: true }
      : { type, id, sentAt, room, epoch, from, text, seq };
  }
  const base = { type: event.type, id: event.id, sentAt };
  switch (event.type) {
    case "welcome": {
      const { room, epoch, name, token } = event;
      return { ...base, room, epoch, name, token, text: event.body };
    }
    case "private":
      return { ...base, from: event.from, to: event.to, text: event.text };
    case "presence": {
      const { room, action, from, oldName, by, reason } = event;
      if (oldName !== undefined) return { ...base, room, action, from, oldName, text: event.body };
      if (by !== undefined) return { ...base, room, action, from, by, reason, text: event.body };
      return { ...base, room, action, from, text: event.body };
    }
    case "system":
      return event.room === undefined
        ? { ...base, text: event.text }
        : { ...base, room: event.room, text: event.text };
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
  }
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

/**
 * Reads `resume`: `room` says where the client was and the last message it
 * saw there (`{"name", "epoch", "seq"}`); clients from before epochs send
 * `rooms`, one room name mapped to a seq.
 */
function decodeResume(fields: Fields): V2Input {
  const name = stringField(fields, "name");
  if (name === undefined) return needs("resume", "name");
  const token = stringField(fields, "token");
  const auth = optionalText(fields, "auth");
  if (auth === null) return needs("resume", "auth");
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
      start: { name, token, room: roomName, epoch, lastSeq: seq as number, resumable },
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
    start: { name, token, room, lastSeq: lastSeq as number | undefined, resumable },
    ...(auth === undefined ? {} : { auth }),
  };
}

/** Most rooms one `rooms` request may give positions for. */
const MAX_SEEN_ROOMS = 1000;

/** `rooms` with `seen`: `{"<room>": {"epoch", "seq"}}`, where the client stopped reading. */
function decodeSeen(value: unknown): V2Input {
  const problem = '"seen" must map room names to {"epoch", "seq"}';
  if (typeof value !== "object" || value === null || Array.isArray(value)) return invalid(problem);
  const entries = Object.entries(value);
  if (entries.length > MAX_SEEN_ROOMS) {
    return invalid(`"seen" may hold at most ${MAX_SEEN_ROOMS} rooms`);
  }
  const seen = new Map<string, { epoch?: string; seq: number }>();
  for (const [room, position] of entries) {
    if (typeof position !== "object" || position === null) return invalid(problem);
    const { epoch, seq } = position as Fields;
    if (epoch !== undefined && typeof epoch !== "string") return invalid(problem);
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) return invalid(problem);
    seen.set(room, { epoch, seq: seq as number });
  }
  return request({ type: "rooms", seen });
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
    case "say":
    case "me": {
      const text = stringField(fields, "text");
      return text === undefined ? needs(type, "text") : request({ type, text });
    }
    case "command": {
      const text = stringField(fields, "text");
      return text === undefined ? needs(type, "text") : request(decodeCommand(text));
    }
    case "join": {
      const room = stringField(fields, "room");
      return room === undefined ? needs(type, "room") : request({ type, room });
    }
    case "pm": {
      const to = stringField(fields, "to");
      const text = stringField(fields, "text");
      if (to === undefined) return needs(type, "to");
      return text === undefined ? needs(type, "text") : request({ type, to, text });
    }
    case "setname": {
      const name = stringField(fields, "name");
      return name === undefined ? needs(type, "name") : request({ type, name });
    }
    case "leave":
    case "rooms":
      return fields.seen === undefined ? request({ type }) : decodeSeen(fields.seen);
    case "members":
    case "about":
    case "env":
    case "ping":
      return request({ type });
    case "help": {
      const command = fields.command;
      if (command !== undefined && typeof command !== "string") return needs(type, "command");
      return request({ type, command });
    }
    case "history": {
      const count = fields.count;
      if (count === undefined) return request({ type });
      if (!Number.isSafeInteger(count) || (count as number) < 1) {
        return invalid('"count" must be a whole number of at least 1');
      }
      return request({ type, count: count as number });
    }
    case "op": {
      const password = stringField(fields, "password");
      return password === undefined ? needs(type, "password") : request({ type, password });
    }
    case "kick": {
      const user = stringField(fields, "user");
      if (user === undefined) return needs(type, "user");
      const reason = optionalText(fields, "reason");
      return reason === null ? needs(type, "reason") : request({ type, user, reason });
    }
    case "mute":
    case "ban": {
      const key = type === "mute" ? "user" : "target";
      const who = stringField(fields, key);
      if (who === undefined) return needs(type, key);
      const seconds = fields.seconds;
      if (!Number.isSafeInteger(seconds) || (seconds as number) < 1) {
        return invalid(`"${type}" needs "seconds", a whole number of at least 1`);
      }
      const reason = optionalText(fields, "reason");
      if (reason === null) return needs(type, "reason");
      return request(
        type === "mute"
          ? { type, user: who, seconds: seconds as number, reason }
          : { type, target: who, seconds: seconds as number, reason },
      );
    }
    case "unmute": {
      const user = stringField(fields, "user");
      return user === undefined ? needs(type, "user") : request({ type, user });
    }
    case "unban": {
      const target = stringField(fields, "target");
      return target === undefined ? needs(type, "target") : request({ type, target });
    }
    case "topic": {
      const text = optionalText(fields, "text");
      return text === null ? needs(type, "text") : request({ type, text });
    }
    case "slow": {
      const seconds = fields.seconds;
      if (!Number.isSafeInteger(seconds) || (seconds as number) < 0) {
        return invalid('"slow" needs "seconds", a whole number of at least 0');
      }
      return request({ type, seconds: seconds as number });
    }
    case "refresh": {
      const auth = stringField(fields, "auth");
      return auth === undefined ? needs(type, "auth") : request({ type, auth });
    }
    default:
      return invalid(
        typeof type === "string"
          ? `unknown type ${JSON.stringify(type.slice(0, 32))}`
          : 'the frame needs a string "type"',
      );
  }
}
