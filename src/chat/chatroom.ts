/**
 * The chat itself: who is connected, which room each user is in, and what
 * happens when someone arrives, asks for something, or leaves. Pure logic
 * over {@linkcode Sink}s, a clock, a name generator and a broker, so it is
 * tested without sockets or timers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Identity, rank } from "../auth.ts";
import { LocalBroker } from "../broker/local.ts";
import type {
  Author,
  Broker,
  LogPosition,
  PrivateNote,
  RoomNote,
  Settled,
} from "../broker/types.ts";
import { commandSummaries, findCommand, usageOf } from "../commands.ts";
import { formatDuration } from "../duration.ts";
import type { ChatConfig } from "../config/mod.ts";
import { createCatalog, type MessageKey, type MessageValues } from "../messages.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { generateName, nameKey, reservedKeys } from "../names.ts";
import { asHistory, EventFactory } from "./event_factory.ts";
import type { ChatEvent, ClientRequest, ErrorCode, SessionStart, Sink } from "./events.ts";
import { Buckets, FloodGuard, TokenBucket, worse } from "./flood.ts";
import { Backend } from "./backend.ts";
import { Membership } from "./membership.ts";
import { Moderation, type Removal } from "./moderation.ts";
import { ModeratorCommands } from "./moderator_commands.ts";
import { LOBBY, type Room } from "./room.ts";
import { RoomDirectory } from "./rooms.ts";
import { cleanText, stripWhitespace, truncateText } from "./sanitize.ts";
import { Sessions } from "./sessions.ts";
import { SignIns } from "./sign_in.ts";
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
  /** Who may connect as whom, and who moderates; by default open, with no operator password. */
  auth?: ChatAuth;
}

/** The parts of `auth` the chat applies. */
export interface ChatAuth {
  /** Token mode: names come from signed tokens, which expire. */
  readonly tokenMode: boolean;
  /** Checks a fresh token sent with `refresh`. */
  readonly verify?: (token: string) => Promise<Identity>;
  /** Seconds before a token expires that its user is warned. */
  readonly expiryWarning: number;
  /** Open mode: `!op <password>` makes a moderator. */
  readonly operatorPassword?: string;
}

const OPEN: ChatAuth = { tokenMode: false, expiryWarning: 60 };

/** Renames one user may make at once, and how fast they earn them back. */
const RENAME_RATE = { rate: 1 / 20, burst: 3 };

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
  readonly #auth: ChatAuth;
  readonly #moderation: Moderation;
  readonly #moderatorCommands: ModeratorCommands;
  readonly #backend: Backend;
  readonly #signIns: SignIns;

  constructor(options: ChatroomOptions) {
    const { config, now = Date.now, broker = new LocalBroker(), auth = OPEN } = options;
    this.#config = config;
    this.#auth = auth;
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
      tokenMode: auth.tokenMode,
      isBanned: (name) => this.#moderation.banOf(name, undefined) !== undefined,
      entered: (user, room) => this.#sendTopic(user, room),
    });
    this.#moderation = new Moderation({
      now,
      broker,
      events: this.#events,
      users: this.#users,
      rooms: this.#rooms,
      metrics: this.#metrics,
      byAddress: !auth.tokenMode,
      remove: (user, removal) => this.#remove(user, removal),
    });
    this.#moderatorCommands = new ModeratorCommands({
      now,
      events: this.#events,
      metrics: this.#metrics,
      moderation: this.#moderation,
      operatorPassword: auth.tokenMode ? undefined : auth.operatorPassword,
      after: (user, settled, then) => this.#after(user, settled, then),
    });
    this.#signIns = new SignIns({
      auth,
      now,
      events: this.#events,
      metrics: this.#metrics,
      users: this.#users,
      after: (user, settled, then) => this.#after(user, settled, then),
      end: (user) => this.disconnect(user),
    });
    this.#backend = new Backend({
      now,
      broker,
      events: this.#events,
      users: this.#users,
      rooms: this.#rooms,
      membership: this.#membership,
      moderation: this.#moderation,
      reserved: reservedKeys(config.reservedNames),
      clean: (text) => this.#clean(text),
      deliverPrivate: (note) => this.#deliverPrivate(note),
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
      handOver: (name, token, verified) => this.#sessions.handOver(name, token, verified),
      forgetHistory: (room) => this.#rooms.find(room)?.forget(),
      recordChanged: (key, record) => this.#moderation.recordChanged(key, record),
      deliverKick: (note) => this.#moderation.deliverKick(note),
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

  /** Bans, mutes, kicks and room settings, for the server API. */
  get moderation(): Moderation {
    return this.#moderation;
  }

  /** What the server API and the HTTP layer ask of the chat. */
  get backend(): Backend {
    return this.#backend;
  }

  /**
   * Ends the lingering sessions whose time is up, and in token mode warns
   * the users whose token soon expires and closes those whose token has;
   * call every second or so.
   */
  expireSessions(): void {
    this.#sessions.expire();
    this.#signIns.expire(this.users());
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
  disconnect(user: User, removal?: Removal): void {
    this.#sessions.forget(user);
    if (!this.#users.has(user)) return;
    log.info("User {id} ({name}) left", { id: user.id, name: user.name });
    this.#exit(user, "disconnected", removal);
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
    this.#moderation.sweep();
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
        if (user.verified) {
          return this.#fail(user, "name_refused", "name_refused", {
            name,
            reason: "names come from your sign-in token here",
          });
        }
        if (this.#moderation.mutedFor(user) !== undefined) {
          return this.#fail(user, "name_refused", "name_refused", {
            name,
            reason: "you are muted",
          });
        }
        // Each rename is told to the room: a few, then one now and then.
        const renames = user.renames ??= new TokenBucket(RENAME_RATE, this.#now());
        if (!renames.available(this.#now())) {
          return this.#fail(user, "name_refused", "name_refused", {
            name,
            reason: "you are renaming too often; wait a minute",
          });
        }
        const reason = this.#sessions.rename(user, name);
        if (reason !== undefined) {
          return this.#fail(user, "name_refused", "name_refused", { name, reason });
        }
        renames.take(this.#now());
        return;
      }
      case "rooms": {
        // Rooms gone idle are not listed; the rest of the sweep waits for its turn.
        this.#membership.sweep();
        const summaries = this.#backend.roomSummaries();
        const seen = request.seen;
        if (seen === undefined) return user.sink.send(this.#events.rooms(summaries));
        return user.sink.send(this.#events.rooms(summaries.map((summary) => {
          const position = seen.get(summary.name);
          const room = this.#rooms.find(summary.name);
          if (room === undefined || summary.lastSeq === 0) return summary;
          const unread = room.unreadAfter(position?.epoch, position?.seq ?? 0);
          return { ...summary, unread };
        })));
      }
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
      case "op":
      case "kick":
      case "mute":
      case "unmute":
      case "ban":
      case "unban":
      case "topic":
      case "slow":
        return this.#moderatorCommands.handle(user, request);
      case "refresh":
        return this.#signIns.refresh(user, request.auth);
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

  /** Whether `user` may speak now: not muted, and not too soon in a slow room. */
  #maySpeak(user: User): boolean {
    const muted = this.#moderation.mutedFor(user);
    if (muted !== undefined) {
      this.#fail(user, "muted", "still_muted", { duration: formatDuration(muted) });
      return false;
    }
    const wait = this.#moderation.slowWait(user);
    if (wait === undefined) return true;
    this.#fail(user, "slow", "slow_wait", { room: user.room.name, seconds: String(wait) });
    return false;
  }

  #say(user: User, text: string, emote: boolean): void {
    if (!this.#maySpeak(user)) return;
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
    const muted = this.#moderation.mutedFor(from);
    if (muted !== undefined) {
      return this.#fail(from, "muted", "still_muted", { duration: formatDuration(muted) });
    }
    const local = this.findUser(name);
    const remote = local === undefined ? this.#broker.findRemote(name) : undefined;
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
    // A look-alike of the room's name finds the room itself.
    if (room === user.room) {
      return this.#fail(user, "usage", "already_in_room", { room: user.room.name });
    }
    this.#after(user, this.#broker.follow(room.name), () => {
      if (!this.#users.has(user)) return;
      this.#exit(user, "left");
      user.sink.send(this.#membership.members(user, room, true));
      this.#sendTopic(user, room);
      this.#membership.sendBacklog(user, room);
      this.#membership.enter(user, room, "joined");
    });
  }

  /** Takes `user` out of their room; a room nobody here is in any more need not come here. */
  #exit(user: User, notice: "disconnected" | "left", removal?: Removal): void {
    const room = user.room;
    this.#membership.exit(user, user.started ? notice : undefined, removal);
    if (room.members.size === 0) this.#broker.unfollow(room.name);
  }

  /** A moderator removes `user`: they are told why, closed, and their room told. */
  #remove(user: User, removal: Removal): void {
    if (!this.#users.has(user)) return;
    log.info("User {id} ({name}) was {notice} by {by}: {reason}", {
      id: user.id,
      name: user.name,
      ...removal,
    });
    this.#metrics.connectionsClosed.inc("removed");
    const { by, reason } = removal;
    user.sink.send(this.#events.error("forbidden", "removed", { by, reason }));
    user.sink.close("removed");
    this.disconnect(user, removal);
  }

  /** Tells `user`, entering `room`, its topic when it has one. */
  #sendTopic(user: User, room: Room<User>): void {
    const topic = this.#moderation.topicOf(room.name);
    if (topic === undefined) return;
    user.sink.send(this.#events.system("topic", { room: room.name, topic }, room.name));
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
    if (asked === undefined) {
      const commands = commandSummaries({
        moderator: rank(user.roles) > 0,
        tokenMode: this.#auth.tokenMode,
        operatorPassword: this.#auth.operatorPassword !== undefined,
      });
      return user.sink.send(this.#events.help(commands, false));
    }
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
    // A user quiet long enough to fill their bucket again is warned again next time.
    if (user.flood.idle(now)) user.floodWarned = false;
    const own = user.flood.check(now);
    const verdict = user.address === undefined
      ? own
      : worse(own, this.#addressFlood.get(user.address, now).check(now));
    if (verdict === "accept") return true;
    this.#metrics.messagesDropped.inc("flood");
    if (verdict !== "disconnect") {
      // One warning for each user of a flood, whichever bucket ran dry.
      if (user.floodWarned) return false;
      user.floodWarned = true;
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      this.#fail(user, "flood", "flood_warning", {});
    } else {
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
