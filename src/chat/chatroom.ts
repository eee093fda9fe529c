/**
 * The chat itself: who is connected, which room each user is in, and what
 * happens when someone arrives, asks for something, or leaves. Pure logic
 * over {@linkcode Sink}s, a clock, a name generator and a broker, so it is
 * tested without sockets or timers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Identity } from "../auth/tokens.ts";
import type { Broker, Settled } from "../broker/types.ts";
import type { ChatConfig } from "../config/mod.ts";
import { createCatalog } from "../messages.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { generateName, reservedKeys } from "../text/names.ts";
import type { Place, SessionStart, Sink } from "../vocabulary/events.ts";
import type { ClientRequest, RequestProblem } from "../vocabulary/requests.ts";
import { Backend } from "./backend.ts";
import { createDeliveries } from "./deliveries.ts";
import { EventFactory } from "./event_factory.ts";
import { Gate, type IdentityRefusal, tellTryLater } from "./gate.ts";
import { Membership } from "./membership.ts";
import { Moderation, type Removal } from "./moderation.ts";
import { ModeratorCommands } from "./moderator_commands.ts";
import { type Actor, API_RANK, type Outcome, settle } from "./outcome.ts";
import { Requests } from "./requests.ts";
import type { Room } from "./room.ts";
import { RoomDirectory } from "./rooms.ts";
import { Inboxes } from "./inboxes.ts";
import { Sessions } from "./sessions.ts";
import { type ChatAuth, SignIns } from "./sign_in.ts";
import { Talk } from "./talk.ts";
import type { User } from "./user.ts";
import { UserDirectory } from "./users.ts";

/** What a {@linkcode Chatroom} is built from. */
export interface ChatroomOptions {
  config: ChatConfig;
  /** Room logs, records and the other instances: a `LocalBroker` when the server runs alone. */
  broker: Broker;
  /** The clock, in milliseconds since the Unix epoch. */
  now?: () => number;
  /** Makes a free name; receives a test for names that may not be given. */
  generateName?: (isTaken: (name: string) => boolean) => string;
  /** Where drops and errors are counted. */
  metrics?: Metrics;
  /** Who may connect as whom, and who moderates; by default open, with no operator password. */
  auth?: ChatAuth;
}

const OPEN: ChatAuth = { tokenMode: false, expiryWarning: 60 };
/** `auth.max_devices`' default. */
const DEFAULT_MAX_DEVICES = 5;

/** The server API acting as a moderator. */
const API_MODERATOR: Actor = { name: "api", rank: API_RANK, room: "" };

const log = getLogger(["chat", "room"]);

/**
 * Every user and room of one chat server. Room events and private messages
 * go out through the {@linkcode Broker} and take effect when it delivers them
 * back, at once when the server runs alone, in the cluster's order otherwise.
 */
export class Chatroom {
  readonly #metrics: Metrics;
  readonly #broker: Broker;
  readonly #events: EventFactory;
  readonly #rooms: RoomDirectory<User>;
  readonly #membership: Membership;
  readonly #users = new UserDirectory();
  readonly #gate: Gate;
  readonly #sessions: Sessions;
  readonly #moderation: Moderation;
  readonly #backend: Backend;
  readonly #signIns: SignIns;
  readonly #requests: Requests;

  constructor(options: ChatroomOptions) {
    const { config, broker, now = Date.now, auth = OPEN } = options;
    this.#metrics = options.metrics ?? createMetrics();
    this.#broker = broker;
    const metrics = this.#metrics;
    const events = this.#events = new EventFactory({
      catalog: createCatalog(config.messages),
      now,
      idPrefix: broker.instance,
    });
    const rooms = this.#rooms = new RoomDirectory({
      historySize: config.historySize,
      maxRooms: config.maxRooms,
      idleTtl: config.roomIdleTtl,
      unusedTtl: Math.min(config.unusedRoomTtl, config.roomIdleTtl),
      now,
      epochOf: (room) => broker.log.epochOf(room),
    });
    const membership = this.#membership = new Membership({
      rooms,
      broker,
      events,
      now,
      historySize: config.historySize,
      presenceNoticeMaxMembers: config.presenceNoticeMaxMembers,
      roomIdleTtl: config.roomIdleTtl,
      presenceRate: { rate: config.presenceRate, burst: config.presenceBurst },
      roomCreateRate: { rate: config.roomCreateRate, burst: config.roomCreateBurst },
      serverRoomCreateRate: {
        rate: config.serverRoomCreateRate,
        burst: config.serverRoomCreateBurst,
      },
      metrics,
    });
    const users = this.#users;
    const inboxes = new Inboxes({
      size: config.pmHistorySize,
      tokenMode: auth.tokenMode,
      broker,
      events,
      metrics,
      users,
    });
    const reserved = reservedKeys(config.reservedNames);
    const moderation = this.#moderation = new Moderation({
      now,
      broker,
      events,
      users,
      rooms,
      metrics,
      byAddress: !auth.tokenMode,
      problemOf: (name) => this.#gate.problemOf(name),
      holderOf: (name) => this.#gate.holderOf(name),
      remove: (user, removal) => this.#remove(user, removal),
    });
    const gate = this.#gate = new Gate({ users, broker, moderation, reserved });
    const after = <T>(user: User, settled: Settled<T>, then: (value: T) => void) =>
      this.#requests.after(user, settled, then);
    this.#sessions = new Sessions({
      config,
      now,
      metrics,
      broker,
      events,
      rooms,
      membership,
      users,
      gate,
      generateName: options.generateName ?? generateName,
      after,
      end: (user) => this.disconnect(user),
      tokenMode: auth.tokenMode,
      maxDevices: auth.maxDevices ?? DEFAULT_MAX_DEVICES,
      inboxes,
      entered: (user, room, to) => this.#sendTopic(room, to ?? user.sink),
    });
    this.#signIns = new SignIns({
      auth,
      now,
      events,
      metrics,
      end: (user) => this.disconnect(user),
      renewed: (user) => membership.announceName(user),
    });
    this.#backend = new Backend({ broker, rooms, membership, moderation });
    const talk = new Talk({
      config,
      now,
      metrics,
      broker,
      events,
      rooms,
      membership,
      moderation,
      gate,
      inboxes,
    });
    this.#requests = new Requests({
      config,
      now,
      metrics,
      events,
      users,
      rooms,
      membership,
      sessions: this.#sessions,
      talk,
      moderation,
      moderatorCommands: new ModeratorCommands({
        now,
        events,
        metrics,
        moderation,
        operatorPassword: auth.tokenMode ? undefined : auth.operatorPassword,
        promoted: (user) => membership.announceName(user),
        removeLast: (actor, name, count) => talk.removeLast(actor, name, count),
      }),
      signIns: this.#signIns,
      backend: this.#backend,
      auth,
      disconnect: (user) => this.disconnect(user),
      move: (user, room) => this.#move(user, room),
      inboxes,
    });
    // The broker's callbacks stay private: only the broker can deliver.
    broker.attach(createDeliveries({
      broker,
      metrics,
      events,
      users,
      rooms,
      sessions: this.#sessions,
      moderation,
      inboxes,
    }));
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
   * lingers after a dropped connection or is still open elsewhere. A signed
   * identity the gate refuses gets no session: `sink` is told why and
   * closed, and `undefined` is returned.
   */
  connect(sink: Sink, start: SessionStart = {}): User | undefined {
    return this.#sessions.start(sink, start);
  }

  /**
   * Why a client should be refused before its upgrade, if it should: a
   * signed identity the gate refuses, or (open mode) a banned address. The
   * session's start decides again, as nothing is held until then.
   */
  refusalAtUpgrade(identity: Identity | undefined, address: string): IdentityRefusal | undefined {
    if (identity !== undefined) return this.#gate.identityRefusal(identity, address);
    const ban = this.#gate.addressBan(address);
    return ban === undefined ? undefined : { kind: "banned", ban };
  }

  /** See {@linkcode tellTryLater}. */
  tryLater(sink: Sink): void {
    tellTryLater(sink, { metrics: this.#metrics, events: this.#events });
  }

  /**
   * Token mode: tells a client that may not start a session why (the caller
   * closes it): its token, or a first frame that could not be read.
   */
  refuse(sink: Sink, reason: string | RequestProblem): void {
    sink.send(
      typeof reason === "string"
        ? this.#events.error("unauthorized", "unauthorized", { reason })
        : this.#events.problem(reason),
    );
  }

  /**
   * The connection behind `sink` closed. A session that can resume lingers
   * for `session_linger`, keeping its name, room, token and the socket's
   * `place`, and nobody sees it leave unless it does not come back; any
   * other session ends now.
   */
  detach(user: User, sink: Sink, place?: Place): void {
    this.#sessions.detach(user, sink, place);
  }

  /** Bans, mutes, kicks and room settings, for the server API. */
  get moderation(): Moderation {
    return this.#moderation;
  }

  /** What the server API reads. */
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
   * Handles one request of `user`, after flood control (see `requests.ts`).
   * What answers only the asker goes to `from`, the device that sent it
   * (every device of the user's, when not given). An unexpected error is
   * logged and answered to this user only.
   */
  handle(user: User, request: ClientRequest, from?: Sink): void {
    this.#requests.handle(user, request, from);
  }

  /**
   * Does what the server API asks, as a moderator (`kick`, `ban`, ...), or
   * as the bot `bot` speaking in `room` (`say`) or to a user (`pm`): the
   * same road, and the same rules, as users' requests. A bot's name passes
   * the gate as users' names do.
   */
  perform(
    request: Exclude<ClientRequest, { type: "invalid" }>,
    bot?: { readonly name: string; readonly room?: string },
  ): Settled<Outcome> {
    if (bot === undefined) return this.#requests.perform(API_MODERATOR, request);
    const problem = this.#gate.problemOf(bot.name);
    const refusal = problem ?? this.#gate.refusalOf(bot.name);
    if (refusal !== undefined) {
      // A name nobody may have is a bad request; one somebody has is a conflict.
      const code = problem === undefined ? "name_refused" : "bad_request";
      const error = this.#events.error(code, "bot_name_refused", {
        name: bot.name,
        reason: refusal,
      });
      return { ok: false, error };
    }
    let room = "";
    if (bot.room !== undefined) {
      // Opened with no one's creation limits: the server API is trusted.
      const opened = this.#membership.open(bot.room);
      if (opened === "room_invalid") {
        const error = this.#events.error("room_invalid", "room_invalid", { room: bot.room });
        return { ok: false, error };
      }
      if (typeof opened === "string") {
        return { ok: false, error: this.#events.error("room_limit", "room_limit", {}) };
      }
      room = opened.name;
    }
    return this.#requests.perform({ name: bot.name, rank: 0, room }, request);
  }

  /** Removes a user and tells their room; safe to call more than once. */
  disconnect(user: User, removal?: Removal): void {
    this.#sessions.forget(user);
    if (!this.#users.has(user)) return;
    log.info("User {id} ({name}) left", { id: user.id, name: user.name });
    this.#exit(user, "disconnected", removal);
    this.#users.remove(user);
    this.#broker.cluster?.names.withdraw(user.name);
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
      this.#broker.cluster?.names.withdraw(user.name);
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
    this.#requests.sweep();
    this.#moderation.sweep();
  }

  /** Moves `user` to `room` once this instance follows it: members, topic, backlog, notices. */
  #move(user: User, room: Room<User>): Settled<void> {
    return settle(this.#broker.log.follow(room.name), () => {
      if (!this.#users.has(user)) return;
      this.#exit(user, "left");
      user.sink.send(this.#membership.members(user, room, true));
      this.#sendTopic(room, user.sink);
      this.#membership.sendBacklog(user, room);
      this.#membership.enter(user, room, "joined");
    });
  }

  /** Takes `user` out of their room; a room nobody here is in any more need not come here. */
  #exit(user: User, notice: "disconnected" | "left", removal?: Removal): void {
    const room = user.room;
    this.#membership.exit(user, user.started ? notice : undefined, removal);
    if (room.members.size === 0) this.#broker.log.unfollow(room.name);
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
  #sendTopic(room: Room<User>, to: Sink): void {
    const topic = this.#moderation.settings.topicOf(room.name);
    if (topic === undefined) return;
    to.send(this.#events.system("topic", { room: room.name, topic }, room));
  }
}
