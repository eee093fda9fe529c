/**
 * The chat itself: who is connected, which room each user is in, and what
 * happens when someone arrives, speaks, runs a command, moves or leaves. Pure
 * logic over {@linkcode Sink}s, a clock and a name generator, so it is tested
 * without sockets or timers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { LocalBroker } from "./broker/local.ts";
import type {
  Author,
  Broker,
  BrokerHandler,
  MessageNote,
  PresenceNote,
  PrivateNote,
  RoomNote,
} from "./broker/types.ts";
import { COMMANDS, parseCommand } from "./commands/mod.ts";
import type { Command, CommandContext, CommandHost } from "./commands/mod.ts";
import { type ChatConfig, type MessageKey, type MessageValues, renderMessage } from "./config.ts";
import type {
  ChatEvent,
  ClientRequest,
  ErrorCode,
  MessageEvent,
  SessionStart,
  Sink,
} from "./events.ts";
import { FloodGuard } from "./flood.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { generateName, nameKey, nameProblem } from "./names.ts";
import { isRoomName, LOBBY, Room } from "./room.ts";
import { User } from "./user.ts";

/** The WebSocket close code sent to everyone when the server stops ("going away"). */
export const CLOSE_GOING_AWAY = 1001;
/** The WebSocket close code for a client that broke the rules (here: kept flooding). */
export const CLOSE_POLICY_VIOLATION = 1008;
/** The close code for a session taken over by a resumed connection. */
export const CLOSE_SESSION_REPLACED = 4000;

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
  /** The link to other instances; by default the server runs alone. */
  broker?: Broker;
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

/**
 * Every user and room of one chat server. Room events and private messages
 * go out through the {@linkcode Broker} and take effect when it delivers them
 * back, at once when the server runs alone, in the cluster's order otherwise.
 */
export class Chatroom implements CommandHost, BrokerHandler {
  readonly #config: ChatConfig;
  readonly #commands: ReadonlyMap<string, Command>;
  readonly #now: () => Date;
  readonly #generateName: (isTaken: (name: string) => boolean) => string;
  readonly #metrics: Metrics;
  readonly #broker: Broker;
  /** {@linkcode nameKey}s of the reserved names. */
  readonly #reserved: ReadonlySet<string>;
  /** Users in arrival order. */
  readonly #users = new Set<User>();
  /** Users by {@linkcode nameKey}. */
  readonly #byName = new Map<string, User>();
  /** Users by id, to recognize their own events coming back from the broker. */
  readonly #byId = new Map<number, User>();
  /** Rooms by {@linkcode nameKey}; the lobby is always there. */
  readonly #rooms = new Map<string, Room>();
  #nextUserId = 1;
  #nextEventId = 1;

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
    this.#rooms.set(LOBBY, new Room(LOBBY, config.historySize));
    this.#broker = options.broker ?? new LocalBroker();
    this.#broker.attach(this);
  }

  get environment(): string {
    return this.#config.environment;
  }

  /** How many users are connected. */
  get size(): number {
    return this.#users.size;
  }

  /** Everyone connected, in arrival order. */
  users(): readonly User[] {
    return [...this.#users];
  }

  findUser(name: string): User | undefined {
    return this.#byName.get(nameKey(name));
  }

  /** The room with this name (compared case-insensitively), if it exists. */
  findRoom(name: string): Room | undefined {
    return this.#rooms.get(nameKey(name));
  }

  /**
   * Starts a session: welcomes the user, who enters the lobby (or the room a
   * resumed session was in) and receives its backlog. A resume whose token
   * matches the session holding the name takes that session over.
   */
  connect(sink: Sink, start: SessionStart = {}): User {
    const { name: requested, token } = start;
    const holder = requested === undefined ? undefined : this.findUser(requested);
    const takeOver = holder !== undefined && token !== undefined && holder.token === token;
    const previousRoom = takeOver ? holder.room : undefined;
    if (takeOver) this.#replace(holder);
    const isTaken = (name: string): boolean => this.#isTaken(name);
    const name = requested !== undefined && nameProblem(requested, this.#reserved) === undefined &&
        !isTaken(requested)
      ? requested
      : this.#generateName(isTaken);
    const user = new User(
      this.#nextUserId++,
      name,
      sink,
      new FloodGuard(this.#config.flood, +this.#now()),
    );
    this.#users.add(user);
    this.#byName.set(nameKey(name), user);
    this.#byId.set(user.id, user);
    log.info("User {id} connected as {name}", { id: user.id, name, resumed: takeOver });

    const room = (start.room === undefined ? undefined : this.#openRoom(start.room)) ??
      this.#lobby();
    user.sink.send({
      ...this.#base("SERVER", this.#text("welcome", { name })),
      type: "welcome",
      name,
      room: room.name,
      token: user.token,
    });
    if (room !== this.#lobby()) this.#sendMembers(user, room, true);
    this.#enter(user, room, {
      lastSeq: start.lastSeq,
      notice: previousRoom === room ? undefined : "connected",
    });
    return user;
  }

  /**
   * Handles one text frame of the original protocol: a command when it
   * starts with `!`, else a message.
   */
  receive(user: User, text: string): void {
    this.handle(user, text.startsWith("!") ? { type: "command", text } : { type: "say", text });
  }

  /**
   * Handles one request. An unexpected error is logged and answered to this
   * user only; nothing else sees it.
   */
  handle(user: User, request: ClientRequest): void {
    if (!this.#users.has(user)) return;
    try {
      if (!this.#passesFloodControl(user)) return;
      this.#dispatch(user, request);
    } catch (error) {
      this.#metrics.errors.inc();
      log.error("Failed to handle a {type} request from user {id}: {error}", {
        type: request.type,
        id: user.id,
        error,
      });
      this.#fail(user, "internal", "internal_error", {});
    }
  }

  /** Answers a binary frame, which neither protocol uses. */
  receiveBinary(user: User): void {
    if (this.#users.has(user)) this.#fail(user, "binary_unsupported", "binary_refused", {});
  }

  /** Answers a request the wire format could not make sense of. */
  refuse(user: User, reason: string): void {
    if (this.#users.has(user)) this.#fail(user, "bad_request", "bad_request", { reason });
  }

  /** Removes a user and tells their room; safe to call more than once. */
  disconnect(user: User): void {
    if (!this.#users.has(user)) return;
    log.info("User {id} ({name}) left", { id: user.id, name: user.name });
    this.#exit(user, "disconnected");
    this.#forget(user);
  }

  /**
   * Says goodbye to everyone and closes every connection with 1001. Users of
   * other instances see everyone here leave.
   */
  shutdown(): void {
    const goodbye = this.#system(this.#text("shutdown", {}));
    const leaving = [...this.#users];
    for (const user of leaving) {
      user.sink.send(goodbye);
      user.sink.close(CLOSE_GOING_AWAY, "server shutting down");
      user.room?.members.delete(user);
    }
    for (const user of leaving) {
      if (user.room !== undefined) this.#publishPresence(user, user.room, "leave", "disconnected");
      this.#forget(user);
    }
  }

  /** Removes rooms that have been empty for `room_idle_ttl`, with their history. */
  sweepRooms(): void {
    const now = +this.#now();
    const ttl = this.#config.roomIdleTtl * 1000;
    const usedElsewhere = new Set(
      [...this.#broker.remoteUsers()].map((user) => nameKey(user.room)),
    );
    for (const [key, room] of this.#rooms) {
      if (key === LOBBY || room.emptySince === undefined) continue;
      if (usedElsewhere.has(key)) {
        room.emptySince = now;
      } else if (now - room.emptySince >= ttl) {
        this.#rooms.delete(key);
        this.#broker.roomRemoved(room.name);
        log.debug("Removed idle room {room}", { room: room.name });
      }
    }
  }

  // ---- BrokerHandler: what the broker delivers ----

  deliverRoomNote(note: RoomNote, seq?: number): void {
    const room = this.#roomOf(note.room);
    const author = this.#localAuthor(note.author);
    if (note.kind === "message") return this.#deliverMessage(room, note, author, seq);
    this.#deliverPresence(room, note, author);
  }

  deliverPrivate(note: PrivateNote): void {
    const to = this.findUser(note.to);
    if (to === undefined) return;
    to.sink.send({
      type: "private",
      id: note.id,
      sentAt: new Date(note.sentAt),
      origin: "PRIVATE",
      from: note.from,
      to: to.name,
      text: note.text,
      body: this.#text("pm_received", { from: note.from, message: note.text }),
    });
  }

  nameLost(name: string): void {
    const user = this.findUser(name);
    if (user === undefined) return;
    log.warning("User {id} lost the name {name} to another instance", { id: user.id, name });
    this.#fail(user, "name_refused", "name_refused", { name, reason: "it is taken" });
    this.#applyRename(user, this.#generateName((candidate) => this.#isTaken(candidate)));
  }

  setDegraded(degraded: boolean): void {
    if (degraded) log.warning("Lost the link to the other instances; serving local users only");
    else log.info("The link to the other instances is back");
    const notice = this.#system(this.#text(degraded ? "degraded" : "recovered", {}));
    for (const user of this.#users) user.sink.send(notice);
  }

  // ---- CommandHost: what commands may do ----

  rename(user: User, name: string): string | undefined {
    const problem = nameProblem(name, this.#reserved);
    if (problem !== undefined) return problem;
    const holder = this.findUser(name);
    if ((holder !== undefined && holder !== user) || this.#isRemote(name)) return "it is taken";
    this.#applyRename(user, name);
    return undefined;
  }

  sendPrivate(from: User, name: string, text: string): boolean {
    const local = this.findUser(name);
    const remote = local === undefined ? this.#broker.findRemote(nameKey(name)) : undefined;
    const to = local?.name ?? remote?.name;
    if (to === undefined) return false;
    const note: PrivateNote = {
      id: this.#nextId(),
      sentAt: +this.#now(),
      from: from.name,
      to,
      text,
    };
    if (remote === undefined) this.deliverPrivate(note);
    else this.#broker.publishPrivate(note, remote);
    from.sink.send({
      type: "private",
      id: this.#nextId(),
      sentAt: new Date(note.sentAt),
      origin: "PRIVATE",
      from: from.name,
      to,
      text,
      body: this.#text("pm_sent", { to, message: text }),
    });
    return true;
  }

  join(user: User, name: string): void {
    const current = user.room!;
    if (!isRoomName(name)) return this.#fail(user, "room_invalid", "room_invalid", { room: name });
    if (nameKey(name) === nameKey(current.name)) {
      return this.#fail(user, "usage", "already_in_room", { room: current.name });
    }
    const room = this.#openRoom(name);
    if (room === undefined) return this.#fail(user, "room_limit", "room_limit", {});
    this.#exit(user, "left");
    this.#sendMembers(user, room, true);
    this.#enter(user, room, { notice: "joined" });
  }

  leave(user: User): void {
    if (user.room === this.#lobby()) {
      return this.#fail(user, "usage", "already_in_room", { room: LOBBY });
    }
    this.join(user, LOBBY);
  }

  say(user: User, text: string, emote = false): void {
    const accepted = this.#broker.publishRoomNote({
      kind: "message",
      room: user.room!.name,
      id: this.#nextId(),
      sentAt: +this.#now(),
      author: this.#author(user),
      text,
      emote,
    });
    if (!accepted) this.#fail(user, "unavailable", "not_sent", {});
  }

  sendMembers(user: User): void {
    this.#sendMembers(user, user.room!, false);
  }

  sendRooms(user: User): void {
    this.sweepRooms();
    const remote = new Map<string, number>();
    for (const other of this.#broker.remoteUsers()) {
      this.#roomOf(other.room);
      remote.set(nameKey(other.room), (remote.get(nameKey(other.room)) ?? 0) + 1);
    }
    const rooms = [...this.#rooms].map(([key, room]) => ({
      name: room.name,
      members: room.members.size + (remote.get(key) ?? 0),
      lastSeq: room.lastSeq,
    }));
    const listing = rooms.map((room) => `${room.name} (${room.members})`).join(", ");
    user.sink.send({
      ...this.#base("SERVER", this.#text("rooms", { rooms: listing })),
      type: "rooms",
      rooms,
    });
  }

  sendHistory(user: User, count = this.#config.historySize): void {
    const room = user.room!;
    const messages = room.recent(count);
    if (messages.length === 0) {
      return user.sink.send(this.#system(this.#text("history_empty", { room: room.name }), room));
    }
    for (const message of messages) user.sink.send(asHistory(message));
  }

  // ---- internals ----

  #dispatch(user: User, request: ClientRequest): void {
    switch (request.type) {
      case "command":
        return this.#runCommand(user, this.#clean(request.text));
      case "say":
      case "me": {
        const text = this.#clean(request.text);
        if (text.trim() === "") return this.#metrics.messagesDropped.inc("empty");
        return this.say(user, text, request.type === "me");
      }
      case "join":
        return this.join(user, request.room);
      case "leave":
        return this.leave(user);
      case "pm": {
        const text = this.#clean(request.text);
        if (text.trim() === "") return this.#metrics.messagesDropped.inc("empty");
        if (!this.sendPrivate(user, request.to, text)) {
          this.#fail(user, "user_not_found", "user_not_found", { name: request.to });
        }
        return;
      }
      case "setname": {
        const reason = this.rename(user, request.name);
        if (reason !== undefined) {
          this.#fail(user, "name_refused", "name_refused", { name: request.name, reason });
        }
        return;
      }
      case "rooms":
        return this.sendRooms(user);
      case "members":
        return this.sendMembers(user);
      case "history":
        return this.sendHistory(user, request.count);
    }
  }

  #clean(text: string): string {
    return truncateText(cleanText(text), this.#config.maxMessageLen);
  }

  #lobby(): Room {
    return this.#rooms.get(LOBBY)!;
  }

  /** The room called `name`, created when missing; `undefined` when invalid or over the limit. */
  #openRoom(name: string): Room | undefined {
    if (!isRoomName(name)) return undefined;
    const key = nameKey(name);
    const existing = this.#rooms.get(key);
    if (existing !== undefined) return existing;
    if (this.#rooms.size >= this.#config.maxRooms) this.sweepRooms();
    if (this.#rooms.size >= this.#config.maxRooms) return undefined;
    const room = new Room(name, this.#config.historySize);
    this.#rooms.set(key, room);
    return room;
  }

  /** The room called `name` as another instance named it, created here when missing. */
  #roomOf(name: string): Room {
    // Notes carry the room's own spelling, so the usual case needs no normalizing.
    const key = this.#rooms.has(name) ? name : nameKey(name);
    let room = this.#rooms.get(key);
    if (room === undefined) {
      room = new Room(name, this.#config.historySize);
      room.emptySince = +this.#now();
      this.#rooms.set(key, room);
    }
    return room;
  }

  /** Whether someone, here or on another instance, holds `name`. */
  #isTaken(name: string): boolean {
    return this.#byName.has(nameKey(name)) || this.#isRemote(name);
  }

  #isRemote(name: string): boolean {
    return this.#broker.findRemote(nameKey(name)) !== undefined;
  }

  #author(user: User): Author {
    return { instance: this.#broker.instance, userId: user.id, name: user.name };
  }

  /** The local user an event is about, if it is one of ours. */
  #localAuthor(author: Author): User | undefined {
    return author.instance === this.#broker.instance ? this.#byId.get(author.userId) : undefined;
  }

  /** Everyone in `room`, here and on other instances. */
  #memberNames(room: Room): string[] {
    const names = [...room.members].map((member) => member.name);
    for (const other of this.#broker.remoteMembers(room.name)) names.push(other.name);
    return names;
  }

  /** Puts `user` in `room`: backlog first, then everyone else hears of it. */
  #enter(
    user: User,
    room: Room,
    options: { lastSeq?: number; notice: "connected" | "joined" | undefined },
  ): void {
    const backlog = options.lastSeq === undefined
      ? room.recent(this.#config.historySize)
      : room.since(options.lastSeq);
    for (const message of backlog) user.sink.send(asHistory(message));
    room.members.add(user);
    room.emptySince = undefined;
    user.room = room;
    this.#broker.announce(user.name, room.name, user.id);
    if (options.notice !== undefined && this.#announcesPresence(room)) {
      this.#publishPresence(user, room, "join", options.notice);
    }
  }

  /** Takes `user` out of their room, telling those left behind. */
  #exit(user: User, notice: "disconnected" | "left" | undefined): void {
    const room = user.room;
    if (room === undefined) return;
    // Counted with the leaver, as a join is counted with the newcomer.
    const announce = notice !== undefined && this.#announcesPresence(room);
    room.members.delete(user);
    user.room = undefined;
    if (room.members.size === 0) room.emptySince = +this.#now();
    if (announce) this.#publishPresence(user, room, "leave", notice);
  }

  #publishPresence(
    user: User,
    room: Room,
    action: PresenceNote["action"],
    notice: PresenceNote["notice"],
    oldName?: string,
  ): void {
    this.#broker.publishRoomNote({
      kind: "presence",
      room: room.name,
      id: this.#nextId(),
      sentAt: +this.#now(),
      author: this.#author(user),
      action,
      notice,
      oldName,
    });
  }

  #deliverMessage(room: Room, note: MessageNote, author: User | undefined, seq?: number): void {
    const name = note.author.name;
    const message = room.append({
      id: note.id,
      sentAt: new Date(note.sentAt),
      origin: "USER",
      from: name,
      text: note.text,
      emote: note.emote,
      body: note.emote
        ? this.#text("emote", { name, action: note.text })
        : this.#text("chat", { name, message: note.text }),
    }, seq);
    this.#broadcast(room, message, author);
    author?.sink.send({ ...message, origin: "SELF" });
  }

  #deliverPresence(room: Room, note: PresenceNote, author: User | undefined): void {
    const name = note.author.name;
    const body = note.notice === "renamed"
      ? this.#text("renamed", { old: note.oldName ?? name, new: name })
      : note.notice === "joined" || note.notice === "left"
      ? this.#text(note.notice === "joined" ? "room_joined" : "room_left", {
        name,
        room: room.name,
      })
      : this.#text(note.notice, { name });
    const event = {
      ...this.#base("SERVER", body),
      id: note.id,
      sentAt: new Date(note.sentAt),
      type: "presence",
      action: note.action,
      room: room.name,
      from: name,
      oldName: note.oldName,
    } as const;
    // A rename is news to the renamed user too; an arrival or departure is not.
    this.#broadcast(room, event, note.action === "rename" ? undefined : author);
  }

  #applyRename(user: User, name: string): void {
    const old = user.name;
    this.#byName.delete(nameKey(old));
    this.#byName.set(nameKey(name), user);
    this.#broker.withdraw(old);
    user.rename(name);
    this.#broker.announce(name, user.room!.name, user.id);
    log.info("User {id} renamed from {old} to {name}", { id: user.id, old, name });
    this.#publishPresence(user, user.room!, "rename", "renamed", old);
  }

  /** Drops every trace of a user who has left. */
  #forget(user: User): void {
    this.#users.delete(user);
    this.#byName.delete(nameKey(user.name));
    this.#byId.delete(user.id);
    this.#broker.withdraw(user.name);
  }

  /** Ends a session taken over by a resume, without presence notices. */
  #replace(user: User): void {
    log.info("User {id} ({name}) resumed on a new connection", { id: user.id, name: user.name });
    this.#exit(user, undefined);
    this.#forget(user);
    user.sink.close(CLOSE_SESSION_REPLACED, "session resumed elsewhere");
  }

  #sendMembers(user: User, room: Room, entering: boolean): void {
    const members = this.#memberNames(room);
    if (entering) members.push(user.name);
    const names = members.join(", ");
    const body = entering
      ? this.#text("room_entered", { room: room.name, members: names })
      : this.#text("who", { names });
    user.sink.send({ ...this.#base("SERVER", body), type: "members", room: room.name, members });
  }

  /** Join and leave notices stop in big rooms, where a mass reconnect would cost O(n²) frames. */
  #announcesPresence(room: Room): boolean {
    let members = room.members.size;
    for (const _ of this.#broker.remoteMembers(room.name)) {
      if (++members > this.#config.presenceNoticeMaxMembers) return false;
    }
    return members <= this.#config.presenceNoticeMaxMembers;
  }

  #passesFloodControl(user: User): boolean {
    const verdict = user.flood.check(+this.#now());
    if (verdict === "accept") return true;
    this.#metrics.messagesDropped.inc("flood");
    if (verdict === "warn") {
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      this.#fail(user, "flood", "flood_warning", {});
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
      return this.#fail(user, "unknown_command", "unknown_command", { text: input });
    }
    const context: CommandContext = {
      user,
      args,
      chat: this,
      reply: (key, values) => user.sink.send(this.#system(this.#text(key, values))),
      fail: (code, key, values) => this.#fail(user, code, key, values),
      replyUsage: () => this.#fail(user, "usage", "usage", { usage: command.usage }),
    };
    command.run(context);
  }

  #text<K extends MessageKey>(key: K, values: MessageValues<K>): string {
    return renderMessage(this.#config.messages, key, values);
  }

  /** Ids unique across the cluster: the instance's id is their prefix. */
  #nextId(): string {
    const serial = (this.#nextEventId++).toString(36);
    return this.#broker.instance === "" ? serial : `${this.#broker.instance}.${serial}`;
  }

  #base(
    origin: "SERVER",
    body: string,
  ): { id: string; sentAt: Date; origin: "SERVER"; body: string } {
    return { id: this.#nextId(), sentAt: this.#now(), origin, body };
  }

  #system(text: string, room?: Room): ChatEvent {
    return { ...this.#base("SERVER", text), type: "system", text, room: room?.name };
  }

  #fail<K extends MessageKey>(user: User, code: ErrorCode, key: K, values: MessageValues<K>): void {
    const text = this.#text(key, values);
    user.sink.send({ ...this.#base("SERVER", text), type: "error", code, text });
  }

  /** Sends one event object to everyone in `room` but `except`; sinks never block or throw. */
  #broadcast(room: Room, event: ChatEvent, except?: User): void {
    for (const member of room.members) {
      if (member !== except) member.sink.send(event);
    }
  }
}

/** A stored message as replayed to someone arriving or catching up. */
function asHistory(message: MessageEvent): MessageEvent {
  return { ...message, type: "history", origin: "HISTORY" };
}
