/**
 * The `!` commands: the text spelling of the requests in the request table,
 * with the usage and the one-line summary `!help` (and so the browser
 * client's hints) shows, all derived from the table.
 *
 * @module
 */

import type { CommandSummary } from "./events.ts";
import { REQUEST_TYPES, type RequestType, specOf, type Who } from "./requests.ts";

/** A `!` command. */
export interface Command {
  /** Lowercase name, without the `!`. */
  readonly name: string;
  /** The request it spells. */
  readonly type: RequestType;
  /** How to call it, such as `!pm <user> <message>`. */
  readonly usage: string;
  /** One line for `!help`. */
  readonly summary: string;
  /** Who `!help` lists it for. */
  readonly who: Who;
}

function spell(name: string, type: RequestType): string {
  const words = Object.values(specOf(type).args)
    .filter((arg) => arg.span !== undefined)
    .map((arg) => arg.optional ? `[${arg.label}]` : `<${arg.label}>`);
  return [`!${name}`, ...words].join(" ");
}

/** Every command, in the order `!help` lists them. */
export const COMMANDS: readonly Command[] = REQUEST_TYPES.flatMap((type) => {
  const spec = specOf(type);
  if (spec.command === false) return [];
  const name = spec.command ?? type;
  // Listed for whoever may make its plainest form (`!topic` shows the topic to anyone).
  const who = typeof spec.who === "function" ? spec.who({}) : spec.who;
  return [{ name, type, usage: spell(name, type), summary: spec.summary, who }];
});

/** What decides which commands `!help` lists for a user. */
export interface HelpContext {
  /** Whether the user is a moderator (or an admin). */
  readonly moderator: boolean;
  readonly tokenMode: boolean;
}

/** Whether `!help` lists a command for whom `who` names, in `context`. */
export function listedFor(who: Who, context: HelpContext): boolean {
  switch (who) {
    case "everyone":
      return true;
    case "moderators":
      return context.moderator;
    case "open":
      return !context.tokenMode;
    case "token":
      return context.tokenMode;
  }
}

/** The commands `!help` lists for a user in `context`, as its answer shows them. */
export function commandSummaries(context: HelpContext): CommandSummary[] {
  return COMMANDS.filter((command) => listedFor(command.who, context))
    .map(({ name, usage, summary }) => ({ name, usage, summary }));
}

const BY_NAME: ReadonlyMap<string, Command> = new Map(
  COMMANDS.map((command) => [command.name, command]),
);

/** How the request of type `type` is spelled as a command, for usage errors. */
export function usageOf(type: RequestType): string {
  const command = COMMANDS.find((command) => command.type === type);
  if (command === undefined) throw new TypeError(`Cannot find the command of "${type}"`);
  return command.usage;
}

/** The command called `name` (without `!`, any case), if there is one. */
export function findCommand(name: string): Command | undefined {
  return name.length > 32 ? undefined : BY_NAME.get(name.toLowerCase());
}
