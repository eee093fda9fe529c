/**
 * The original wire format: clients send plain text frames, where text
 * starting with `!` is a command and anything else a chat message; the
 * server sends each event as one JSON text frame `{"body", "origin", "sentAt"}`.
 *
 * @module
 */

import type { ChatEvent, ClientRequest, Origin } from "../vocabulary/events.ts";
import { findCommand } from "../vocabulary/commands.ts";

/** Reads one text frame: a chat message, or the request a `!` command spells. */
export function decodeV1Frame(text: string): ClientRequest {
  return text.startsWith("!") ? decodeCommand(text) : { type: "say", text };
}

/**
 * Reads a command line such as `!pm Bob hi` (the name is case-insensitive);
 * an unknown command or arguments that do not fit come back as `invalid`.
 */
export function decodeCommand(line: string): ClientRequest {
  const [, name = "", args = ""] = /^!(\S*)\s*(.*)$/su.exec(line) ?? [];
  const command = line.startsWith("!") ? findCommand(name) : undefined;
  if (command === undefined) {
    return { type: "invalid", problem: { code: "unknown_command", command: line } };
  }
  return command.parse(args.trimEnd()) ??
    { type: "invalid", problem: { code: "usage", usage: command.usage } };
}

/**
 * The frame for `event`, whose time is `sentAt` (ISO 8601); `own` marks the
 * author's copy of their own message.
 */
export function encodeV1Frame(event: ChatEvent, own: boolean, sentAt: string): string {
  return joinV1Frame(JSON.stringify(event.body), own ? "SELF" : event.origin, sentAt);
}

/**
 * A frame from its parts, where `bodyJson` is the body already written as
 * JSON: the author's copy of a message differs from everyone else's only in
 * `origin`, so escaping the body once serves both.
 */
export function joinV1Frame(bodyJson: string, origin: Origin, sentAt: string): string {
  return `{"body":${bodyJson},"origin":"${origin}","sentAt":"${sentAt}"}`;
}
