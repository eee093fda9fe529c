/**
 * The chat itself: who is connected and what happens when someone arrives,
 * speaks, runs a command or leaves. Pure logic over {@linkcode Sink}s, a
 * clock and a name generator, so it is tested without sockets or timers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { COMMANDS, parseCommand } from "./commands/mod.ts";
import type { Command, CommandContext, CommandHost } from "./commands/mod.ts";
import { type ChatConfig, type MessageKey, type MessageValues, renderMessage } from "./config.ts";
import { FloodGuard } from "./flood.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { generateName, nameKey, nameProblem } from "./names.ts";
import { type ChatEvent, type Origin, type Sink, User } from "./user.ts";

/** The WebSocket close code sent to everyone when the server stops ("going away"). */
export const CLOSE_GOING_AWAY = 1001;
/** The WebSocket close code for a client that broke the rules (here: kept flooding). */
export const CLOSE_POLICY_VIOLATION = 1008;

/** What a {@linkcode Chatroom} is built from; all but `config` have defaults. */
export interface ChatroomOptions {
  config: ChatConfig;
  commands?: readonly Command[];
  /** The clock stamped on events. */
  now?: () => Date;
  /** Makes a free name; receives a test for names already taken. */
  generateName?: (isTaken: (name: string) => boolean) => string;
  /** Where drops and errors are counted. */
  metrics?: Metrics;
}

/** Options of {@linkcode Chatroom.connect}. */
export interface ConnectOptions {
  /** The name the client asked for; a generated one is used when it is invalid or taken. */
  name?: string;
}

const log = getLogger(["chat", "room"]);

/** Control and format characters other than tab: line breaks, bells, bidi overrides, zero-widths. */
const UNSAFE_CHARACTERS = /(?!\t)[\p{Cc}\p{Cf}]/gu;

/**
 * Makes client text safe to show: unpaired surrogates become U+FFFD and
 * control and format characters (except tab) are removed.
 */
export function cleanText(text: string): string {
  return text.toWellFormed().replace(UNSAFE_CHARACTERS, "");
}

/** Cuts `text` to at most `max` code points, never splitting a surrogate pair. */
export function truncateText(text: string, max: number): string {
  // A string's UTF-16 length is never below its code point count.
  if (text.length <= max) return text;
  let end = 0;
  for (let count = 0; count < max && end < text.length; count++) {
    end += text.codePointAt(end)! > 0xffff ? 2 : 1;
  }
  return text.slice(0, end);
}

/** The single chatroom every connected user is in. */
export class Chatroom implements CommandHost {
  readonly #config: ChatConfig;
  readonly #commands: ReadonlyMap<string, Command>;
  readonly #now: () => Date;
  readonly #generateName: (isTaken: (name: string) => boolean) => string;
  readonly #metrics: Metrics;
  /** {@linkcode nameKey}s of the reserved names. */
  readonly #reserved: ReadonlySet<string>;
  /** Users in arrival order. */
  readonly #users = new Set<User>();
  /** Users by {@linkcode nameKey}. */
  readonly #byName = new Map<string, User>();
  #nextId = 1;

  /** Every command, in the order `!help` lists them. */
  readonly commands: readonly Command[];

  constructor(options: ChatroomOptions) {
    const { config, commands = COMMANDS, now = () => new Date() } = options;
    this.#config = config;
    this.commands = commands;
    this.#commands = new Map(commands.map((command) => [command.name, command]));
    this.#now = now;
    this.#generateName = options.generateName ?? generateName;
    this.#metrics = options.metrics ?? createMetrics();
    this.#reserved = new Set(config.reservedNames.map(nameKey));
  }

  get environment(): string {
    return this.#config.environment;
  }

  /** How many users are connected. */
  get size(): number {
    return this.#users.size;
  }

  users(): readonly User[] {
    return [...this.#users];
  }

  findUser(name: string): User | undefined {
    return this.#byName.get(nameKey(name));
  }

  /** Adds a user: welcomes them and tells everyone else. */
  connect(sink: Sink, options: ConnectOptions = {}): User {
    const { name: requested } = options;
    const isTaken = (name: string): boolean => this.#byName.has(nameKey(name));
    const name = requested !== undefined && nameProblem(requested, this.#reserved) === undefined &&
        !isTaken(requested)
      ? requested
      : this.#generateName(isTaken);
    const now = this.#now();
    const user = new User(this.#nextId++, name, sink, new FloodGuard(this.#config.flood, +now));
    this.#users.add(user);
    this.#byName.set(nameKey(name), user);
    log.info("User {id} connected as {name}", { id: user.id, name });
    this.#send(user, "SERVER", this.#text("welcome", { name }));
    if (this.#announcesPresence()) {
      this.#broadcast(this.#event("SERVER", this.#text("connected", { name })), user);
    }
    return user;
  }

  /**
   * Handles one text frame from `user`: a command when it starts with `!`,
   * else a message. An unexpected error is logged and answered to this user
   * only; nothing else sees it.
   */
  receive(user: User, text: string): void {
    if (!this.#users.has(user)) return;
    try {
      if (!this.#passesFloodControl(user)) return;
      const input = truncateText(cleanText(text), this.#config.maxMessageLen);
      if (input.startsWith("!")) return this.#runCommand(user, input);
      if (input.trim() === "") {
        this.#metrics.messagesDropped.inc("empty");
        return;
      }
      const body = this.#text("chat", { name: user.name, message: input });
      const sentAt = this.#now();
      this.#broadcast({ origin: "USER", body, sentAt }, user);
      user.sink.send({ origin: "SELF", body, sentAt });
    } catch (error) {
      this.#metrics.errors.inc();
      log.error("Failed to handle a frame from user {id}: {error}", { id: user.id, error });
      this.#send(user, "SERVER", this.#text("internal_error", {}));
    }
  }

  /** Answers a binary frame, which this protocol does not use. */
  receiveBinary(user: User): void {
    if (this.#users.has(user)) this.#send(user, "SERVER", this.#text("binary_refused", {}));
  }

  /** Removes a user and tells everyone else; safe to call more than once. */
  disconnect(user: User): void {
    if (!this.#users.has(user)) return;
    // Counted with the leaver, as a join is counted with the newcomer.
    const announce = this.#announcesPresence();
    this.#users.delete(user);
    this.#byName.delete(nameKey(user.name));
    log.info("User {id} ({name}) left", { id: user.id, name: user.name });
    if (announce) {
      this.#broadcast(this.#event("SERVER", this.#text("disconnected", { name: user.name })));
    }
  }

  /** Says goodbye to everyone and closes every connection with 1001. */
  shutdown(): void {
    const goodbye = this.#event("SERVER", this.#text("shutdown", {}));
    for (const user of this.#users) {
      user.sink.send(goodbye);
      user.sink.close(CLOSE_GOING_AWAY, "server shutting down");
    }
    this.#users.clear();
    this.#byName.clear();
  }

  rename(user: User, name: string): string | undefined {
    const problem = nameProblem(name, this.#reserved);
    if (problem !== undefined) return problem;
    const key = nameKey(name);
    const holder = this.#byName.get(key);
    if (holder !== undefined && holder !== user) return "it is taken";
    const old = user.name;
    this.#byName.delete(nameKey(old));
    this.#byName.set(key, user);
    user.rename(name);
    log.info("User {id} renamed from {old} to {name}", { id: user.id, old, name });
    this.#broadcast(this.#event("SERVER", this.#text("renamed", { old, new: name })));
    return undefined;
  }

  sendPrivate(from: User, to: User, message: string): void {
    this.#send(to, "PRIVATE", this.#text("pm_received", { from: from.name, message }));
    this.#send(from, "PRIVATE", this.#text("pm_sent", { to: to.name, message }));
  }

  /** Join and leave notices stop in big rooms, where a mass reconnect would cost O(n²) frames. */
  #announcesPresence(): boolean {
    return this.#users.size <= this.#config.presenceNoticeMaxMembers;
  }

  #passesFloodControl(user: User): boolean {
    const verdict = user.flood.check(+this.#now());
    if (verdict === "accept") return true;
    this.#metrics.messagesDropped.inc("flood");
    if (verdict === "warn") {
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      this.#send(user, "SERVER", this.#text("flood_warning", {}));
    } else if (verdict === "disconnect") {
      log.info("Closing user {id}: kept flooding", { id: user.id });
      this.#metrics.connectionsClosed.inc("flood");
      user.sink.close(CLOSE_POLICY_VIOLATION, "flooding");
      this.disconnect(user);
    }
    return false;
  }

  #runCommand(user: User, input: string): void {
    const { name, args } = parseCommand(input);
    const command = this.#commands.get(name);
    if (command === undefined) {
      return this.#send(user, "SERVER", this.#text("unknown_command", { text: input }));
    }
    const context: CommandContext = {
      user,
      args,
      chat: this,
      reply: (key, values) => this.#send(user, "SERVER", this.#text(key, values)),
      replyText: (body) => this.#send(user, "SERVER", body),
      replyUsage: () => this.#send(user, "SERVER", this.#text("usage", { usage: command.usage })),
    };
    command.run(context);
  }

  #text<K extends MessageKey>(key: K, values: MessageValues<K>): string {
    return renderMessage(this.#config.messages, key, values);
  }

  #event(origin: Origin, body: string): ChatEvent {
    return { origin, body, sentAt: this.#now() };
  }

  #send(user: User, origin: Origin, body: string): void {
    user.sink.send(this.#event(origin, body));
  }

  /** Sends one event object to everyone but `except`; sinks never block or throw. */
  #broadcast(event: ChatEvent, except?: User): void {
    for (const user of this.#users) {
      if (user !== except) user.sink.send(event);
    }
  }
}
