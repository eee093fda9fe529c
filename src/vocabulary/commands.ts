/**
 * The `!` commands: the text spelling of the chat's requests. Each command
 * turns its arguments into the same {@linkcode ClientRequest} a v2 client
 * sends, so both protocols take one road into the chat; `!help` and the
 * browser client's hints are generated from this list.
 *
 * To add a request: add its type to `ClientRequest` (src/chat/events.ts),
 * handle it in `Chatroom.handle`, spell it here, and decode it in v2.
 *
 * @module
 */

import type { ClientRequest, CommandSummary } from "./events.ts";
import { parseDuration } from "../text/duration.ts";

/** The first word of `args` and the rest, trimmed. */
function firstWord(args: string): [string, string] {
  const [, word = "", rest = ""] = /^(\S*)\s*(.*)$/su.exec(args) ?? [];
  return [word, rest.trim()];
}

/** `<target> <duration> [reason]`, for mutes and bans; `undefined` when the duration is not one. */
function targetForDuration(args: string): [string, number, string | undefined] | undefined {
  const [target, rest] = firstWord(args);
  const [duration, reason] = firstWord(rest);
  const seconds = parseDuration(duration);
  if (target === "" || seconds === undefined) return undefined;
  return [target, seconds, reason === "" ? undefined : reason];
}

/** A `!` command. */
export interface Command {
  /** Lowercase name, without the `!`. */
  readonly name: string;
  /** How to call it, such as `!pm <user> <message>`. */
  readonly usage: string;
  /** One line for `!help`. */
  readonly summary: string;
  /**
   * Who `!help` lists it for: moderators, open mode with an operator
   * password, or token mode; everyone when absent.
   */
  readonly for?: "moderators" | "operator" | "token";
  /**
   * The request this command spells, from everything after its name
   * (trimmed); `undefined` when the arguments cannot make one.
   */
  parse(args: string): ClientRequest | undefined;
}

/** Every command, in the order `!help` lists them. */
export const COMMANDS: readonly Command[] = [
  {
    name: "help",
    usage: "!help [command]",
    summary: "lists the commands, or explains one",
    parse: (args) => ({ type: "help", command: args === "" ? undefined : args }),
  },
  {
    name: "about",
    usage: "!about",
    summary: "describes this server",
    parse: () => ({ type: "about" }),
  },
  {
    name: "setname",
    usage: "!setname <new name>",
    summary: "changes your name",
    parse: (args) => ({ type: "setname", name: args }),
  },
  {
    name: "who",
    usage: "!who",
    summary: "lists the users in your room",
    parse: () => ({ type: "members" }),
  },
  {
    name: "env",
    usage: "!env",
    summary: "shows the server environment",
    parse: () => ({ type: "env" }),
  },
  {
    name: "ping",
    usage: "!ping",
    summary: "answers pong!",
    parse: () => ({ type: "ping" }),
  },
  {
    name: "pm",
    usage: "!pm <user> <message>",
    summary: "sends a private message",
    parse(args) {
      const [to, text] = firstWord(args);
      return { type: "pm", to, text };
    },
  },
  {
    name: "join",
    usage: "!join <room>",
    summary: "moves you to a room (created if new)",
    parse: (args) => ({ type: "join", room: args }),
  },
  {
    name: "leave",
    usage: "!leave",
    summary: "takes you back to the lobby",
    parse: () => ({ type: "leave" }),
  },
  {
    name: "rooms",
    usage: "!rooms",
    summary: "lists the rooms",
    parse: () => ({ type: "rooms" }),
  },
  {
    name: "me",
    usage: "!me <action>",
    summary: "describes what you do",
    parse: (args) => ({ type: "me", text: args }),
  },
  {
    name: "history",
    usage: "!history [n]",
    summary: "replays the newest messages of your room",
    parse(args) {
      if (args === "") return { type: "history" };
      return /^0*[1-9]\d*$/.test(args) ? { type: "history", count: Number(args) } : undefined;
    },
  },
  {
    name: "topic",
    usage: "!topic [text]",
    summary: "shows your room's topic; moderators set it",
    parse: (args) => ({ type: "topic", text: args === "" ? undefined : args }),
  },
  {
    name: "op",
    for: "operator",
    usage: "!op <password>",
    summary: "makes you a moderator, with the operator password",
    parse: (args) => args === "" ? undefined : { type: "op", password: args },
  },
  {
    name: "kick",
    for: "moderators",
    usage: "!kick <user> [reason]",
    summary: "disconnects a user",
    parse(args) {
      const [user, reason] = firstWord(args);
      return user === "" ? undefined : { type: "kick", user, reason: reason || undefined };
    },
  },
  {
    name: "mute",
    for: "moderators",
    usage: "!mute <user> <duration> [reason]",
    summary: "silences a user for 30s, 10m, 2h, 1d, ...",
    parse(args) {
      const parsed = targetForDuration(args);
      if (parsed === undefined) return undefined;
      const [user, seconds, reason] = parsed;
      return { type: "mute", user, seconds, reason };
    },
  },
  {
    name: "unmute",
    for: "moderators",
    usage: "!unmute <user>",
    summary: "lets a muted user speak again",
    parse: (args) => args === "" ? undefined : { type: "unmute", user: args },
  },
  {
    name: "ban",
    for: "moderators",
    usage: "!ban <user|address> <duration> [reason]",
    summary: "disconnects and keeps out a user or an address",
    parse(args) {
      const parsed = targetForDuration(args);
      if (parsed === undefined) return undefined;
      const [target, seconds, reason] = parsed;
      return { type: "ban", target, seconds, reason };
    },
  },
  {
    name: "unban",
    for: "moderators",
    usage: "!unban <user|address>",
    summary: "lifts a ban",
    parse: (args) => args === "" ? undefined : { type: "unban", target: args },
  },
  {
    name: "slow",
    for: "moderators",
    usage: "!slow <seconds>",
    summary: "one message per user every so many seconds here; 0 ends it",
    parse: (args) => /^\d{1,5}$/.test(args) ? { type: "slow", seconds: Number(args) } : undefined,
  },
  {
    name: "refresh",
    for: "token",
    usage: "!refresh <token>",
    summary: "renews your sign-in with a fresh token",
    parse: (args) => args === "" ? undefined : { type: "refresh", auth: args },
  },
];

/** What decides which commands `!help` lists for a user. */
export interface HelpContext {
  readonly moderator: boolean;
  readonly tokenMode: boolean;
  readonly operatorPassword: boolean;
}

/** The commands `!help` lists for a user in `context`, as its answer shows them. */
export function commandSummaries(context: HelpContext): CommandSummary[] {
  return COMMANDS.filter((command) =>
    command.for === undefined ||
    (command.for === "moderators" && context.moderator) ||
    (command.for === "token" && context.tokenMode) ||
    (command.for === "operator" && !context.tokenMode && context.operatorPassword)
  ).map(({ name, usage, summary }) => ({ name, usage, summary }));
}

const BY_NAME: ReadonlyMap<string, Command> = new Map(
  COMMANDS.map((command) => [command.name, command]),
);

/** The command called `name` (without `!`, any case), if there is one. */
export function findCommand(name: string): Command | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** How the command called `name` is spelled, for usage errors. */
export function usageOf(name: string): string {
  const command = BY_NAME.get(name);
  if (command === undefined) throw new TypeError(`Cannot find the command "${name}"`);
  return command.usage;
}
