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

import type { ClientRequest, CommandSummary } from "./chat/events.ts";

/** A `!` command. */
export interface Command {
  /** Lowercase name, without the `!`. */
  readonly name: string;
  /** How to call it, such as `!pm <user> <message>`. */
  readonly usage: string;
  /** One line for `!help`. */
  readonly summary: string;
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
      const [, to, text = ""] = /^(\S*)\s*(.*)$/su.exec(args) ?? [];
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
];

/** Every command as the `help` answer lists it. */
export const COMMAND_SUMMARIES: readonly CommandSummary[] = COMMANDS.map((
  { name, usage, summary },
) => ({ name, usage, summary }));

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
