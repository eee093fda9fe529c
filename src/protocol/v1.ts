/**
 * The original wire format: clients send plain text frames, where text
 * starting with `!` is a command and anything else a chat message; the
 * server sends each event as one JSON text frame `{"body", "origin", "sentAt"}`.
 *
 * @module
 */

import { findCommand } from "../vocabulary/commands.ts";
import type { ChatEvent, Origin } from "../vocabulary/events.ts";
import { type ClientRequest, specOf } from "../vocabulary/requests.ts";

/** Reads one text frame: a chat message, or the request a `!` command spells. */
export function decodeV1Frame(text: string): ClientRequest {
  return text.startsWith("!") ? decodeCommand(text) : { type: "say", text };
}

/** The first word of `text` and the rest, trimmed. */
function firstWord(text: string): [string, string] {
  const [, word = "", rest = ""] = /^(\S*)\s*(.*)$/su.exec(text) ?? [];
  return [word, rest.trim()];
}

/**
 * Reads a command line such as `!pm Bob hi` (the name is case-insensitive)
 * into its request, argument by argument as the request table spells them:
 * one word each, the last maybe the rest of the line. An unknown command,
 * or arguments that do not fit, come back as `invalid`.
 */
export function decodeCommand(line: string): ClientRequest {
  const [name, rest] = firstWord(line.startsWith("!") ? line.slice(1) : "");
  const command = line.startsWith("!") ? findCommand(name) : undefined;
  if (command === undefined) {
    return { type: "invalid", problem: { code: "unknown_command", command: line } };
  }
  const usage: ClientRequest = {
    type: "invalid",
    problem: { code: "usage", usage: command.usage },
  };
  const spelled = Object.entries(specOf(command.type).args)
    .filter(([, arg]) => arg.span !== undefined);
  const values: Record<string, unknown> = {};
  let remaining = rest;
  for (const [key, arg] of spelled) {
    let piece: string;
    if (arg.span === "rest") [piece, remaining] = [remaining, ""];
    else [piece, remaining] = firstWord(remaining);
    if (piece === "") {
      if (arg.optional) continue;
      return usage;
    }
    const value = arg.fromText(piece);
    if (value === undefined) return usage;
    values[key] = value;
  }
  // A command without arguments ignores what follows it, as it always did.
  if (remaining !== "" && spelled.length > 0) return usage;
  return { type: command.type, ...values } as ClientRequest;
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
