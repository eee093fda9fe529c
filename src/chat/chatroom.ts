/**
 * The chat itself: who is connected, which room each user is in, and what
 * happens when someone arrives, asks for something, or leaves. Pure logic
 * over {@linkcode Sink}s, a clock, a name generator and a broker, so it is
 * tested without sockets or timers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { LocalBroker } from "../broker/local.ts";
import type {
  Author,
  Broker,
  LogPosition,
  PrivateNote,
  RoomNote,
  Settled,
} from "../broker/types.ts";
import { COMMAND_SUMMARIES, findCommand, usageOf } from "../commands.ts";
import type { ChatConfig } from "../config/mod.ts";
import { createCatalog, type MessageKey, type MessageValues } from "../messages.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { generateName, nameKey } from "../names.ts";
import { asHistory, EventFactory } from "./event_factory.ts";
import type { ChatEvent, ClientRequest, ErrorCode, SessionStart, Sink } from "./events.ts";
import { Buckets, FloodGuard, worse } from "./flood.ts";
import { Membership } from "./membership.ts";
import { LOBBY, type Room } from "./room.ts";
import { RoomDirectory } from "./rooms.ts";
import { cleanText, stripWhitespace, truncateText } from "./sanitize.ts";
import { Sessions } from "./sessions.ts";
import type { User } from "./user.ts";
import { UserDirectory } from "./users.ts";

/** What a {@linkcode Chatroom} is built from; all but `config` have defaults. */
export interface ChatroomOptions {
  config: ChatConfig;
  /** The clock, in milliseconds since the Unix epoch. */
  now?: () => number;
  /** Makes a free name; receives a test for names already taken. */
  generateName?: (isTaken: (name: string) => boolean) => string;
  /** Where drops and errors are counted. */
  metrics?: Metrics;
  /** The link to other instances; by default the server runs alone. */
  broker?: Broker;
}

/** Requests a user may have waiting while an earlier one waits for the cluster. */
const MAX_WAITING = 64;

const log = getLogger(["chat", "room"]);

/**
 * Every user and room of one chat server. Room events and private messages
 * go out through the {@linkcode Broker} and take effect when it delivers them
 * back, at once when the server runs alone, in the cluster's order otherwise.
 */
export class Chatroom {
  readonly #config: ChatConfig;
  readonly #now: () => number;
  readonly #metrics: Metrics;
  readonly #broker: Broker;
  readonly #events: EventFactory;
  readonly #rooms: RoomDirectory<User>;
  readonly #membership: Membership;
  readonly #users = new UserDirectory();
  readonly #sessions: Sessions;
  /** Flood control of each client address, across its connections and reconnects. */
  readonly #addressFlood: Buckets<FloodGuard>;

  constructor(options: ChatroomOptions) {
    const { config, now = Date.now, broker = new LocalBroker() } = options;
    this.#config = config;
    this.#now = now;
    this.#metrics = options.metrics ?? createMetrics();
    this.#broker = broker;
    this.#events = new EventFactory({
      catalog: createCatalog(config.messages),
      now,
      idPrefix: broker.instance,
    });
    this.#rooms = new RoomDirectory({
      historySize: config.historySize,
      maxRooms: config.maxRooms,
      idleTtl: config.roomIdleTtl,
      unusedTtl: Math.min(config.unusedRoomTtl, config.roomIdleTtl),
      now,
      epochOf: (room) => broker.epochOf(room),
    });
    this.#membership = new Membership({
      rooms: this.#rooms,
      broker,
      events: this.#events,
      now,
      historySize: config.historySize,
      presenceNoticeMaxMembers: config.presenceNoticeMaxMembers,
      presenceRate: { rate: config.presenceRate, burst: config.presenceBurst },
      roomCreateRate: { rate: config.roomCreateRate, burst: config.roomCreateBurst },
      metrics: this.#metrics,
    });
    const { addressRate, addressBurst, disconnectAfter } = config.flood;
    this.#addressFlood = new Buckets((now) =>
      new FloodGuard({ rate: addressRate, burst: addressBurst, disconnectAfter }, now)
    );
    this.#sessions = new Sessions({
      config,
      now,
      metrics: this.#metrics,
      broker,
      events: this.#events,
      rooms: this.#rooms,
      membership: this.#membership,
      users: this.#users,
      generateName: options.generateName ?? generateName,
      after: (user, settled, then) => this.#after(user, settled, then),
      end: (user) => this.disconnect(user),
    });
    // The broker's callbacks stay private: only the broker can deliver.
    broker.attach({
      deliverRoomNote: (note, position) => this.#deliverRoomNote(note, position),
      deliverPrivate: (note) => this.#deliverPrivate(note),
      nameLost: (name) => {
        const user = this.findUser(name);
        if (user !== undefined) this.#sessions.nameLost(user);
      },
      setDegraded: (degraded) => this.#notifyAll(degraded ? "degraded" : "recovered"),
      setHistorySaved: (saved) => this.#notifyAll(saved ? "history_saved" : "history_unsaved"),
      handOver: (name, token) => this.#sessions.handOver(name, token),
      forgetHistory: (room) => this.#rooms.find(room)?.forget(),
    });
  }

  /** How many users are connected (or lingering). */
  get size(): number {
    return this.#users.size;
  }

  /** Everyone connected, in arrival order. */
  users(): readonly User[] {
    return [...this.#users.all()];
  }

  findUser(name: string): User | undefined {
    return this.#users.find(name);
  }

  /** The room with this name (compared as names are), if it exists here. */
  findRoom(name: string): Room<User> | undefined {
    return this.#rooms.find(name);
  }

  /**
   * Starts a session: welcomes the user, who enters the lobby (or the room
   * asked for) and receives what they missed of it. A `token` that matches
   * the session holding the name picks that session up instead, whether it
   * lingers after a dropped connection or is still open elsewhere.
   */
  connect(sink: Sink, start: SessionStart = {}): User {
    return this.#sessions.start(sink, start);
  }

  /**
   * The connection behind `sink` closed. A session that can resume lingers
   * for `session_linger`, keeping its name, room and token, and nobody sees
   * it leave unless it does not come back; any other session ends now.
   */
  detach(user: User, sink: Sink): void {
    this.#sessions.detach(user, sink);
  }

  /** Ends the lingering sessions whose time is up; call every second or so. */
  expireSessions(): void {
    this.#sessions.expire();
  }

  /**
   * Handles one request, after flood control. The request's text is cleaned
   * and checked here, once, whichever protocol it came in. While an earlier
   * request waits for the other instances, later ones wait after it. An
   * unexpected error is logged and answered to this user only.
   */
  handle(user: User, request: ClientRequest): void {
    if (!this.#users.has(user) || !this.#passesFloodControl(user)) return;
    const waiting = user.waiting;
    if (waiting === undefined) return this.#dispatchSafely(user, request);
    if (waiting.length < MAX_WAITING) waiting.push(request);
    else this.#metrics.messagesDropped.inc("flood");
  }

  /** Removes a user and tells their room; safe to call more than once. */
  disconnect(user: User): void {
    this.#sessions.forget(user);
    if (!this.#users.has(user)) return;
    log.info("User {id} ({name}) left", { id: user.id, name: user.name });
    this.#exit(user, "disconnected");
    this.#users.remove(user);
    this.#broker.withdraw(user.name);
  }

  /** Says goodbye to everyone and closes every session. Other instances see everyone here leave. */
  shutdown(): void {
    const goodbye = this.#events.system("shutdown", {});
    const leaving = this.users();
    for (const user of leaving) {
      user.sink.send(goodbye);
      user.sink.close("shutdown");
      this.#membership.exit(user, undefined);
    }
    for (const user of leaving) {
      if (user.started) this.#membership.announce(user, "leave", "disconnected");
      this.#sessions.forget(user);
      this.#users.remove(user);
      this.#broker.withdraw(user.name);
    }
  }

  /**
   * Removes rooms that have been empty for `room_idle_ttl` (`unused_room_ttl`
   * for rooms that never held a message), with their history, and forgets
   * the rate limits of whoever has been quiet long enough.
   */
  sweepRooms(): void {
    for (const room of this.#membership.sweep()) {
      log.debug("Removed idle room {room}", { room: room.name });
    }
    this.#membership.sweepLimits();
    this.#addressFlood.sweep(this.#now());
  }

  // ---- requests ----

  #dispatchSafely(user: User, request: ClientRequest): void {
    try {
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

  #dispatch(user: User, request: ClientRequest): void {
    switch (request.type) {
      case "say":
      case "me": {
        const text = this.#clean(request.text);
        if (text.trim() !== "") return this.#say(user, text, request.type === "me");
        if (request.type === "me") return this.#usage(user, "me");
        return this.#metrics.messagesDropped.inc("empty");
      }
      case "pm": {
        const to = stripWhitespace(this.#clean(request.to));
        const text = this.#clean(request.text);
        if (to === "" || text.trim() === "") return this.#usage(user, "pm");
        return this.#sendPrivate(user, to, text);
      }
      case "join": {
        const room = this.#clean(request.room).trim();
        return room === "" ? this.#usage(user, "join") : this.#join(user, room);
      }
      case "leave":
        if (user.room !== this.#rooms.lobby) return this.#join(user, LOBBY);
        return this.#fail(user, "usage", "already_in_room", { room: LOBBY });
      case "setname": {
        const name = stripWhitespace(this.#clean(request.name));
        if (name === "") return this.#usage(user, "setname");
        const reason = this.#sessions.rename(user, name);
        if (reason !== undefined) {
          this.#fail(user, "name_refused", "name_refused", { name, reason });
        }
        return;
      }
      case "rooms":
        this.sweepRooms();
        return user.sink.send(this.#events.rooms(this.#membership.summaries()));
      case "members":
        return user.sink.send(this.#membership.members(user, user.room, false));
      case "history":
        return this.#sendHistory(user, request.count ?? this.#config.historySize);
      case "help":
        return this.#help(user, request.command);
      case "about":
        return user.sink.send(this.#events.system("about", {}));
      case "env":
        return user.sink.send(this.#events.system("env", { env: this.#config.environment }));
      case "ping":
        return user.sink.send(this.#events.system("pong", {}));
      case "invalid": {
        const { problem } = request;
        return user.sink.send(this.#events.problem(
          problem.code === "unknown_command"
            ? { code: problem.code, command: this.#clean(problem.command) }
            : problem,
        ));
      }
    }
  }

  /**
   * Runs `then` once `settled` is: at once when it is ready, else later,
   * with the user's requests waiting meanwhile and handled after it, in order.
   */
  #after<T>(user: User, settled: Settled<T>, then: (value: T) => void): void {
    if (!(settled instanceof Promise)) return then(settled);
    const step = {};
    user.step = step;
    user.waiting ??= [];
    settled.then(then).catch((error) => {
      log.error("A request of user {id} could not be completed: {error}", { id: user.id, error });
      if (this.#users.has(user)) this.#fail(user, "unavailable", "not_sent", {});
    }).finally(() => {
      // A step started by `then` takes the waiting requests over.
      if (user.step !== step) return;
      user.step = undefined;
      const waiting = user.waiting ?? [];
      user.waiting = undefined;
      for (let request = waiting.shift(); request !== undefined; request = waiting.shift()) {
        if (!this.#users.has(user)) return;
        this.#handleInTurn(user, request);
      }
    });
  }

  /** Handles a request that waited, unless a newer step makes it wait again. */
  #handleInTurn(user: User, request: ClientRequest): void {
    if (user.waiting === undefined) this.#dispatchSafely(user, request);
    else user.waiting.push(request);
  }

  /** Client text made safe to show and cut to `max_message_len`. */
  #clean(text: string): string {
    return truncateText(cleanText(text), this.#config.maxMessageLen);
  }

  #say(user: User, text: string, emote: boolean): void {
    const accepted = this.#broker.publishRoomNote({
      kind: "message",
      room: user.room.name,
      id: this.#events.nextId(),
      sentAt: this.#now(),
      author: this.#membership.author(user),
      text,
      emote,
    });
    if (!accepted) this.#fail(user, "unavailable", "not_sent", {});
  }

  #sendPrivate(from: User, name: string, text: string): void {
    const local = this.findUser(name);
    const remote = local === undefined ? this.#broker.findRemote(nameKey(name)) : undefined;
    const to = local?.name ?? remote?.name;
    if (to === undefined) return this.#fail(from, "user_not_found", "user_not_found", { name });
    const note: PrivateNote = {
      id: this.#events.nextId(),
      sentAt: this.#now(),
      from: from.name,
      to,
      text,
    };
    if (remote === undefined) this.#deliverPrivate(note);
    else this.#broker.publishPrivate(note, remote);
    from.sink.send(this.#events.private(note, "sent"));
  }

  /** Moves `user` to the room `name`, once this instance follows it. */
  #join(user: User, name: string): void {
    if (nameKey(name) === nameKey(user.room.name)) {
      return this.#fail(user, "usage", "already_in_room", { room: user.room.name });
    }
    const room = this.#membership.open(name, { user, address: user.address });
    if (room === "room_invalid") return this.#fail(user, room, room, { room: name });
    if (room === "room_limit") return this.#fail(user, room, room, {});
    if (room === "room_create_limit") return this.#fail(user, "room_limit", room, {});
    this.#after(user, this.#broker.follow(room.name), () => {
      if (!this.#users.has(user)) return;
      this.#exit(user, "left");
      user.sink.send(this.#membership.members(user, room, true));
      this.#membership.sendBacklog(user, room);
      this.#membership.enter(user, room, "joined");
    });
  }

  /** Takes `user` out of their room; a room nobody here is in any more need not come here. */
  #exit(user: User, notice: "disconnected" | "left"): void {
    const room = user.room;
    this.#membership.exit(user, user.started ? notice : undefined);
    if (room.members.size === 0) this.#broker.unfollow(room.name);
  }

  #sendHistory(user: User, count: number): void {
    const room = user.room;
    const messages = room.recent(count);
    if (messages.length === 0) {
      return user.sink.send(this.#events.system("history_empty", { room: room.name }, room.name));
    }
    for (const message of messages) user.sink.send(asHistory(message, room.epoch));
  }

  #help(user: User, asked: string | undefined): void {
    if (asked === undefined) return user.sink.send(this.#events.help(COMMAND_SUMMARIES, false));
    const name = this.#clean(asked).trim().replace(/^!/, "").toLowerCase();
    const command = findCommand(name);
    if (command === undefined) {
      return this.#fail(user, "unknown_command", "unknown_command", { text: `!${name}` });
    }
    const { usage, summary } = command;
    user.sink.send(this.#events.help([{ name, usage, summary }], true));
  }

  /** Answers a request whose needed text is missing with how to spell it. */
  #usage(user: User, command: "me" | "pm" | "join" | "setname"): void {
    this.#fail(user, "usage", "usage", { usage: usageOf(command) });
  }

  // ---- what the broker delivers ----

  #deliverRoomNote(note: RoomNote, position?: LogPosition): void {
    const room = this.#rooms.ensure(note.room);
    const author = this.#localAuthor(note.author);
    if (note.kind === "message") {
      const { epoch = room.epoch, seq = room.nextSeq } = position ?? {};
      const message = this.#events.message(note, room.name, seq);
      // A message seen before (delivered again after a reconnect) is not news.
      if (!room.append(message, epoch)) return;
      this.#broadcast(room, message, author);
      author?.sink.send(message, true);
      return;
    }
    const event = this.#events.presence(note, room.name);
    // A rename is news to the renamed user too; an arrival or departure is not.
    this.#broadcast(room, event, note.action === "rename" ? undefined : author);
  }

  #deliverPrivate(note: PrivateNote): void {
    this.findUser(note.to)?.sink.send(this.#events.private(note, "received"));
  }

  /** Tells every user something about the server as a whole. */
  #notifyAll(key: "degraded" | "recovered" | "history_saved" | "history_unsaved"): void {
    if (key === "degraded") {
      log.warning("Lost the link to the other instances; serving local users only");
    }
    if (key === "recovered") log.info("The link to the other instances is back");
    const notice = this.#events.system(key, {});
    for (const user of this.#users.all()) user.sink.send(notice);
  }

  /** The local user an event is about, if it is one of ours. */
  #localAuthor(author: Author): User | undefined {
    return author.instance === this.#broker.instance ? this.#users.byId(author.userId) : undefined;
  }

  /** Every request draws from the user's bucket and from their address's. */
  #passesFloodControl(user: User): boolean {
    const now = this.#now();
    const own = user.flood.check(now);
    const verdict = user.address === undefined
      ? own
      : worse(own, this.#addressFlood.get(user.address, now).check(now));
    if (verdict === "accept") return true;
    this.#metrics.messagesDropped.inc("flood");
    if (verdict === "warn") {
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      this.#fail(user, "flood", "flood_warning", {});
    } else if (verdict === "disconnect") {
      log.info("Closing user {id}: kept flooding", { id: user.id });
      this.#metrics.connectionsClosed.inc("flood");
      // Said before the close frame: a client that keeps sending may never read that.
      this.#fail(user, "flood", "flood_closed", {});
      user.sink.close("flood");
      this.disconnect(user);
    }
    return false;
  }

  #fail<K extends MessageKey>(user: User, code: ErrorCode, key: K, values: MessageValues<K>): void {
    user.sink.send(this.#events.error(code, key, values));
  }

  /** Sends one event object to everyone in `room` but `except`; sinks never block or throw. */
  #broadcast(room: Room<User>, event: ChatEvent, except?: User): void {
    for (const member of room.members) {
      if (member !== except) member.sink.send(event);
    }
  }
}
