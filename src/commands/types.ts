import type { MessageKey, MessageValues } from "../config.ts";
import type { User } from "../user.ts";

/** What a command may do to the chat; the chatroom implements it. */
export interface CommandHost {
  /** The environment name shown by `!env`, such as `LOCAL`. */
  readonly environment: string;
  /** Every command, in the order `!help` lists them. */
  readonly commands: readonly Command[];
  /** Everyone connected, in the order they arrived. */
  users(): readonly User[];
  /** The user with this name (compared as names are), if connected. */
  findUser(name: string): User | undefined;
  /** Renames `user` and tells everyone; returns why not when it cannot. */
  rename(user: User, name: string): string | undefined;
  /** Sends a private message and its echo. */
  sendPrivate(from: User, to: User, message: string): void;
}

/** One run of a command by one user. */
export interface CommandContext {
  readonly user: User;
  /** Everything after the command name, trimmed. */
  readonly args: string;
  readonly chat: CommandHost;
  /** Sends a configured message to the user who ran the command. */
  reply<K extends MessageKey>(key: K, values: MessageValues<K>): void;
  /** Sends literal text to the user who ran the command. */
  replyText(body: string): void;
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
