/**
 * The kinds of argument a request takes, each declared once: how the text
 * protocol spells it (one word, or the rest of the line), how JSON carries it
 * (v2 and the server API), its bounds, and what a client is told when it does
 * not fit. Every value is bounded in size here, before any other work on it.
 *
 * @module
 */

import { MAX_DURATION_SECONDS, parseDuration } from "../text/duration.ts";
import { MAX_NAME_UNITS } from "../text/names.ts";

/** Where a request's text form keeps an argument: one word, or the rest of the line. */
export type TextSpan = "word" | "rest";

/** One argument of a request: read from text or JSON, or refused. */
export interface Arg<T, Optional extends boolean = boolean> {
  readonly optional: Optional;
  /** How usages show it: `<user>` or `[reason]`. */
  readonly label: string;
  /** What it must be, for a JSON client: `a user's name`. */
  readonly expected: string;
  /** How the text protocol spells it; `undefined` when only JSON carries it. */
  readonly span: TextSpan | undefined;
  /** The value of its text form (never empty), or `undefined` when it is not one. */
  fromText(text: string): T | undefined;
  /** The value of its JSON form (never `undefined`), or `undefined` when it is not one. */
  fromJson(value: unknown): T | undefined;
}

/** The value an argument gives. */
export type ArgValue<A> = A extends Arg<infer T, boolean> ? T : never;

/** Longest moderation target (`addr:` and an IPv6 network, or `name:` and a name). */
const MAX_TARGET_UNITS = 80;
/** Messages a ban removes along, at most. */
const MAX_REMOVED = 1000;
/** Event ids (an instance's id and a serial number) and room names are far shorter than this. */
const MAX_ID_UNITS = 128;
/** Longest free text read (a reason, a topic, an action): more is refused unread. */
const MAX_TEXT_UNITS = 4096;
/** Longest secret or signed token read. */
const MAX_SECRET_UNITS = 8192;

function stringOf(max: number, options: { empty?: boolean } = {}) {
  return (value: unknown): string | undefined =>
    typeof value === "string" && value.length <= max && (options.empty || value.trim() !== "")
      ? value
      : undefined;
}

interface ArgOptions<T> {
  readonly label: string;
  readonly expected: string;
  readonly span: TextSpan | undefined;
  readonly fromText: (text: string) => T | undefined;
  readonly fromJson: (value: unknown) => T | undefined;
}

function required<T>(options: ArgOptions<T>): Arg<T, false> {
  return { optional: false, ...options };
}

function optional<T>(options: ArgOptions<T>): Arg<T, true> {
  return { optional: true, ...options };
}

/** A user's name, one word (or, with `rest`, the rest of the line: `!setname Big Bird`). */
export function userName(
  options: { label?: string; rest?: boolean } = {},
): Arg<string, false> {
  const read = stringOf(options.rest ? MAX_TEXT_UNITS : MAX_NAME_UNITS);
  return required({
    label: options.label ?? "user",
    expected: "a user's name",
    span: options.rest ? "rest" : "word",
    fromText: read,
    fromJson: read,
  });
}

/** A room's name: the rest of the line, so that `!join my room` is refused as one name. */
export function roomName(): Arg<string, false> {
  const read = stringOf(MAX_TEXT_UNITS);
  return required({
    label: "room",
    expected: "a room's name",
    span: "rest",
    fromText: read,
    fromJson: read,
  });
}

/** The room a request names, when not the user's own. */
export function otherRoom(): Arg<string, true> {
  const read = stringOf(MAX_ID_UNITS);
  return optional({
    label: "room",
    expected: "a room's name",
    span: "word",
    fromText: read,
    fromJson: read,
  });
}

/** JSON only: the user whose private conversation with the asker a request is about. */
export function conversationWith(): Arg<string, true> {
  return optional({
    label: "with",
    expected: "a user's name",
    span: undefined,
    fromText: () => undefined,
    fromJson: stringOf(MAX_NAME_UNITS),
  });
}

/** How many of a user's newest messages to remove along (JSON only: v2 and the server API). */
export function removeCount(): Arg<number, true> {
  return optional({
    label: "delete",
    expected: `a whole number of messages from 1 to ${MAX_REMOVED}`,
    span: undefined,
    fromText: () => undefined,
    fromJson: (value) => wholeNumber(value, 1, MAX_REMOVED),
  });
}

/** The id of a message, as its events carry it. */
export function messageId(): Arg<string, false> {
  const read = stringOf(MAX_ID_UNITS);
  return required({
    label: "id",
    expected: `a message's id (at most ${MAX_ID_UNITS} characters)`,
    span: "word",
    fromText: read,
    fromJson: read,
  });
}

/** Who a moderation acts on: a user, `name:<name>` or `addr:<address or network>`. */
export function target(): Arg<string, false> {
  const read = stringOf(MAX_TARGET_UNITS);
  return required({
    label: "target",
    expected: 'a user\'s name, "name:" and a name, or "addr:" and an address or network',
    span: "word",
    fromText: read,
    fromJson: read,
  });
}

/** Chat text: the rest of the line; empty text is the handler's to judge. */
export function message(label: string): Arg<string, false> {
  return required({
    label,
    expected: "a string",
    span: "rest",
    fromText: (text) => text,
    fromJson: (value) => typeof value === "string" ? value : undefined,
  });
}

/** Free text that may be left out (a reason). */
export function note(label: string): Arg<string, true> {
  const read = stringOf(MAX_TEXT_UNITS);
  return optional({ label, expected: "text", span: "rest", fromText: read, fromJson: read });
}

/**
 * A room's topic, which may be left out (to read it) or empty (to clear it):
 * as text, `""` is the empty topic.
 */
export function topic(): Arg<string, true> {
  const read = stringOf(MAX_TEXT_UNITS, { empty: true });
  return optional({
    label: "text",
    expected: 'text ("" clears the topic)',
    span: "rest",
    fromText: (text) => text === '""' ? "" : read(text),
    fromJson: read,
  });
}

/** A secret (a password, a signed token): the rest of the line. */
export function secret(label: string, span: TextSpan = "rest"): Arg<string, false> {
  const read = stringOf(MAX_SECRET_UNITS);
  return required({ label, expected: `the ${label}`, span, fromText: read, fromJson: read });
}

/** A command's name, with or without its `!`, that may be left out. */
export function commandName(): Arg<string, true> {
  const read = stringOf(MAX_NAME_UNITS);
  return optional({
    label: "command",
    expected: "a command's name",
    span: "word",
    fromText: read,
    fromJson: read,
  });
}

/** A whole number from `min` to `max`. */
function wholeNumber(value: unknown, min: number, max: number): number | undefined {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max
    ? value as number
    : undefined;
}

/** The same, written in decimal digits. */
function digits(text: string, min: number, max: number): number | undefined {
  return /^\d{1,16}$/.test(text) ? wholeNumber(Number(text), min, max) : undefined;
}

/** How long a mute or ban lasts: `30s`, `10m`, `2h`, `7d`, `1w` as text, seconds in JSON. */
export function duration(): Arg<number, false> {
  return required({
    label: "duration",
    expected: `a whole number of seconds from 1 to ${MAX_DURATION_SECONDS}`,
    span: "word",
    fromText: parseDuration,
    fromJson: (value) => wholeNumber(value, 1, MAX_DURATION_SECONDS),
  });
}

/** A whole number of seconds from 0 to `max`. */
export function seconds(max: number): Arg<number, false> {
  return required({
    label: "seconds",
    expected: `a whole number of seconds from 0 to ${max}`,
    span: "word",
    fromText: (text) => digits(text, 0, max),
    fromJson: (value) => wholeNumber(value, 0, max),
  });
}

/** How many, at least one, that may be left out. */
export function count(label: string): Arg<number, true> {
  return optional({
    label,
    expected: "a whole number of at least 1",
    span: "word",
    fromText: (text) => digits(text, 1, Number.MAX_SAFE_INTEGER),
    fromJson: (value) => wholeNumber(value, 1, Number.MAX_SAFE_INTEGER),
  });
}

/** Where a client stopped reading a room: the log's epoch and the seq of the last message seen. */
export interface SeenPosition {
  readonly epoch?: string;
  readonly seq: number;
}

/** Most rooms one `seen` may give positions for. */
export const MAX_SEEN_ROOMS = 1000;

/** A position as JSON, `{"epoch", "seq"}`, checked (the epoch bounded), or `undefined`. */
export function readPosition(value: unknown): SeenPosition | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { epoch, seq } = value as Record<string, unknown>;
  if (epoch !== undefined && (typeof epoch !== "string" || epoch.length > MAX_NAME_UNITS)) {
    return undefined;
  }
  const at = wholeNumber(seq, 0, Number.MAX_SAFE_INTEGER);
  return at === undefined ? undefined : { epoch, seq: at };
}

/** JSON only: `{"<room>": {"epoch", "seq"}}`, where the client stopped reading some rooms. */
export function seen(): Arg<ReadonlyMap<string, SeenPosition>, true> {
  return optional({
    label: "seen",
    expected: `an object of at most ${MAX_SEEN_ROOMS} room names, each {"epoch", "seq"}`,
    span: undefined,
    fromText: () => undefined,
    fromJson(value) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
      const entries = Object.entries(value);
      if (entries.length > MAX_SEEN_ROOMS) return undefined;
      const positions = new Map<string, SeenPosition>();
      for (const [room, at] of entries) {
        const read = readPosition(at);
        if (read === undefined || room.length > MAX_NAME_UNITS) return undefined;
        positions.set(room, read);
      }
      return positions;
    },
  });
}
