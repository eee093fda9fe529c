import type { MessageKey, MessageValues } from "../config.ts";
import type { ErrorCode } from "../events.ts";
import type { User } from "../user.ts";

/** What a command may do to the chat; the chatroom implements it. */
export interface CommandHost {
  /** The environment name shown by `!env`, such as `LOCAL`. */
  readonly environment: string;
  /** Every command, in the order `!help` lists them. */
  readonly commands: readonly Command[];
  /** Renames `user` and tells their room; returns why not when it cannot. */
  rename(user: User, name: string): string | undefined;
  /** Sends a private message to the user called `name`, wherever they are, and its echo; false when there is none. */
  sendPrivate(from: User, name: string, text: string): boolean;
  /** Moves `user` to the room called `name`, creating it when needed. */
  join(user: User, name: string): void;
  /** Moves `user` back to the lobby. */
  leave(user: User): void;
  /** Says `text` in the user's room; `emote` makes it an action (`!me`). */
  say(user: User, text: string, emote?: boolean): void;
  /** Tells `user` who is in their room. */
  sendMembers(user: User): void;
  /** Tells `user` every room with its member count. */
  sendRooms(user: User): void;
  /** Replays up to `count` of the newest messages of the user's room. */
  sendHistory(user: User, count?: number): void;
}

/** One run of a command by one user. */
export interface CommandContext {
  readonly user: User;
  /** Everything after the command name, trimmed. */
  readonly args: string;
  readonly chat: CommandHost;
  /** Sends a configured message to the user who ran the command. */
  reply<K extends MessageKey>(key: K, values: MessageValues<K>): void;
  /** Tells the user who ran the command that it could not be done. */
  fail<K extends MessageKey>(code: ErrorCode, key: K, values: MessageValues<K>): void;
  /** Tells the user how the command is used. */
  replyUsage(): void;
}

/** A `!` command. */
export interface Command {
  /** Lowercase name, without the `!`. */
  readonly name: string;
  /** How to call it, such as `!pm <user> <message>`. */
  readonly usage: string;
  /** One line for `!help`. */
  readonly summary: string;
  run(context: CommandContext): void;
}
