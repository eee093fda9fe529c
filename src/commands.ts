/**
 * The `!` commands: one registry, from which `!help` is generated.
 *
 * @module
 */

import { about, env, help, ping } from "./info.ts";
import { setname } from "./names.ts";
import { pm } from "./pm.ts";
import { history, join, leave, me, rooms, who } from "./rooms.ts";
import type { Command } from "./types.ts";

export type { Command, CommandContext, CommandHost } from "./types.ts";

/** Every command, in the order `!help` lists them. */
export const COMMANDS: readonly Command[] = [
  help,
  about,
  setname,
  who,
  env,
  ping,
  pm,
  join,
  leave,
  rooms,
  me,
  history,
];

/** A command line split into its lowercase name and its trimmed argument string. */
export interface ParsedCommand {
  readonly name: string;
  readonly args: string;
}

/** Splits `!name args`; the name is case-insensitive. `text` starts with `!`. */
export function parseCommand(text: string): ParsedCommand {
  const match = /^!(\S*)\s*(.*)$/su.exec(text);
  const [, name, args] = match ?? ["", "", ""];
  return { name: name.toLowerCase(), args: args.trimEnd() };
}
