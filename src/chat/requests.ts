/**
 * What is asked of the chat, whichever road it came by: one handler per
 * request type, checked by the compiler against the request table, and one
 * check of who may make it. Users' requests pass flood control first and are
 * answered with events; a request that waits for the other instances (a
 * name, a room not read here yet) makes the user's later requests wait after
 * it, in order. The server API's requests take the same road (`perform`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { rank } from "../auth/tokens.ts";
import type { Settled } from "../broker/types.ts";
import type { ChatConfig } from "../config/mod.ts";
import { Buckets, FloodGuard, TokenBucket, worse } from "../limits.ts";
import type { Metrics } from "../metrics.ts";
import { shownName } from "../text/names.ts";
import { stripWhitespace } from "../text/sanitize.ts";
import { commandSummaries, findCommand, usageOf } from "../vocabulary/commands.ts";
import type { SeenPosition } from "../vocabulary/arguments.ts";
import type { ChatEvent, Sink } from "../vocabulary/events.ts";
import {
  type ClientRequest,
  type RequestOf,
  type RequestType,
  whoMay,
} from "../vocabulary/requests.ts";
import type { ChatAuth } from "./sign_in.ts";
import type { Backend } from "./backend.ts";
import { asHistory, type EventFactory } from "./event_factory.ts";
import type { Inboxes } from "./inboxes.ts";
import type { Membership } from "./membership.ts";
import type { Moderation } from "./moderation.ts";
import type { ModeratorCommands } from "./moderator_commands.ts";
import { type Actor, DONE, type Outcome, settle } from "./outcome.ts";
import { LOBBY, type Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { Sessions } from "./sessions.ts";
import type { SignIns } from "./sign_in.ts";
import type { Talk } from "./talk.ts";
import type { Asked, User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

/** Renames one user may make at once, and how fast they earn them back. */
const RENAME_RATE = { rate: 1 / 20, burst: 3 };

/** Requests a user may have waiting while an earlier one waits for the cluster. */
const MAX_WAITING = 64;

const log = getLogger(["chat", "room"]);

/** What {@linkcode Requests} works with, shared with the chatroom. */
export interface RequestsOptions {
  readonly config: ChatConfig;
  readonly now: () => number;
  readonly metrics: Metrics;
  readonly events: EventFactory;
  readonly users: UserDirectory;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly sessions: Sessions;
  readonly talk: Talk;
  readonly moderation: Moderation;
  readonly moderatorCommands: ModeratorCommands;
  readonly signIns: SignIns;
  readonly backend: Backend;
  readonly auth: ChatAuth;
  /** Ends the session of `user`, telling their room. */
  readonly disconnect: (user: User) => void;
  /** Moves `user` to `room` once it is followed here. */
  readonly move: (user: User, room: Room<User>) => Settled<void>;
  /** Token mode: the accounts' private conversations. */
  readonly inboxes: Inboxes;
}

/** A request's handler: what `actor` asked, and what came of it. */
type Handler<T extends RequestType> = (actor: Actor, request: RequestOf<T>) => Settled<Outcome>;

/** The requests of every user of one chat server. */
export class Requests {
  readonly #options: RequestsOptions;
  /** Flood control of each client address, across its connections and reconnects. */
  readonly #addressFlood: Buckets<FloodGuard>;
  /** One handler per request of the table; the compiler checks none is missing. */
  readonly #handlers: { readonly [T in RequestType]: Handler<T> };

  constructor(options: RequestsOptions) {
    this.#options = options;
    const { addressRate, addressBurst, disconnectAfter } = options.config.flood;
    this.#addressFlood = new Buckets((now) =>
      new FloodGuard({ rate: addressRate, burst: addressBurst, disconnectAfter }, now)
    );
    const { talk, moderatorCommands: mod, signIns } = options;
    const session = (actor: Actor): User => {
      if (actor.user === undefined) {
        throw new TypeError("Cannot handle a user's request without one");
      }
      return actor.user;
    };
    this.#handlers = {
      say: (actor, request) => talk.say(actor, request),
      me: (actor, request) => talk.say(actor, request),
      pm: (actor, request) => talk.pm(actor, request),
      join: (actor, request) => this.#join(session(actor), request.room),
      leave: (actor) => this.#leave(session(actor)),
      setname: (actor, request) => this.#rename(session(actor), request.name),
      rooms: (actor, request) => this.#listRooms(actor, request.seen),
      members: (actor) =>
        this.#reply(actor, (user) => options.membership.members(user, user.room, false)),
      history: (actor, request) =>
        request.with === undefined
          ? this.#sendHistory(actor, session(actor).room, request.count)
          : this.#sendConversation(actor, session(actor), request.with, request.count),
      help: (actor, request) => this.#help(actor, request.command),
      about: (actor) => this.#reply(actor, () => options.events.system("about", {})),
      env: (actor) =>
        this.#reply(actor, () => options.events.system("env", { env: options.config.environment })),
      ping: (actor) => this.#reply(actor, () => options.events.system("pong", {})),
      op: (actor, request) => mod.op(session(actor), request),
      kick: (actor, request) => mod.kick(actor, request),
      mute: (actor, request) => mod.mute(actor, request),
      unmute: (actor, request) => mod.unmute(actor, request),
      ban: (actor, request) => mod.ban(actor, request),
      unban: (actor, request) => mod.unban(actor, request),
      topic: (actor, request) => mod.topic(actor, request),
      slow: (actor, request) => mod.slow(actor, request),
      edit: (actor, request) => talk.edit(actor, request),
      delete: (actor, request) => talk.delete(actor, request),
      typing: (actor) => talk.typing(session(actor)),
      refresh: (actor, request) => signIns.refresh(session(actor), request.auth),
    };
  }

  /** What a user is, as one who asks from the device `from` (any of theirs, when not given). */
  actorOf(user: User, from: Sink = user.sink): Actor {
    return { name: user.name, rank: rank(user.roles), user, room: user.room.name, reply: from };
  }

  /**
   * Handles one request of a user, after flood control, and answers it. While
   * an earlier request waits for the other instances, later ones wait after
   * it. An unexpected error is logged and answered to this user only.
   */
  handle(user: User, request: ClientRequest, from: Sink = user.sink): void {
    if (!this.#options.users.has(user)) return;
    // A device no longer the session's (closed for too many, its close not done) speaks for nobody.
    if (from !== user.sink && !user.devices.includes(from)) return;
    if (!this.#passesFloodControl(user)) return;
    const waiting = user.waiting;
    if (waiting === undefined) return this.#dispatchSafely(user, request, from);
    if (waiting.length < MAX_WAITING) waiting.push({ request, from });
    else this.#options.metrics.messagesDropped.inc("flood");
  }

  /**
   * Does what `actor` asks, if they may: the one road every request takes
   * once decoded, whoever asks.
   */
  perform(actor: Actor, request: Exclude<ClientRequest, { type: "invalid" }>): Settled<Outcome> {
    const { auth, events, metrics } = this.#options;
    switch (whoMay(request)) {
      case "moderators": {
        if (actor.rank > 0) break;
        metrics.moderationRefused.inc();
        log.info("Refused {type} to {name}: not a moderator", {
          type: request.type,
          name: actor.name,
        });
        const command = findCommand(request.type)?.name ?? request.type;
        return { ok: false, error: events.error("forbidden", "forbidden", { command }) };
      }
      case "open":
        if (!auth.tokenMode) break;
        return { ok: false, error: events.error("forbidden", "op_unavailable", {}) };
      case "token": {
        if (auth.tokenMode) break;
        const reason = "this server does not use sign-in tokens";
        return { ok: false, error: events.error("bad_request", "bad_request", { reason }) };
      }
    }
    const handler = this.#handlers[request.type] as Handler<RequestType>;
    return handler(actor, request);
  }

  /**
   * Runs `then` once `settled` is: at once when it is ready, else later,
   * with the user's requests waiting meanwhile and handled after it, in order.
   * If it fails, the device that asked (`from`) is told.
   */
  after<T>(user: User, settled: Settled<T>, then: (value: T) => void, from?: Sink): void {
    if (!(settled instanceof Promise)) return then(settled);
    const { users } = this.#options;
    const step = {};
    user.step = step;
    user.waiting ??= [];
    settled.then(then).catch((error) => {
      log.error("A request of user {id} could not be completed: {error}", { id: user.id, error });
      if (users.has(user)) {
        (from ?? user.sink).send(this.#options.events.error("unavailable", "not_sent", {}));
      }
    }).finally(() => {
      // A step started by `then` takes the waiting requests over.
      if (user.step !== step) return;
      user.step = undefined;
      const waiting = user.waiting ?? [];
      user.waiting = undefined;
      for (let asked = waiting.shift(); asked !== undefined; asked = waiting.shift()) {
        if (!users.has(user)) return;
        this.#handleInTurn(user, asked);
      }
    });
  }

  /** Forgets the flood control of addresses, and the rates of rooms, quiet long enough. */
  sweep(): void {
    this.#addressFlood.sweep(this.#options.now());
    this.#options.talk.sweep();
  }

  /** Handles a request that waited, unless a newer step makes it wait again. */
  #handleInTurn(user: User, asked: Asked): void {
    if (user.waiting === undefined) this.#dispatchSafely(user, asked.request, asked.from);
    else user.waiting.push(asked);
  }

  #dispatchSafely(user: User, request: ClientRequest, from: Sink): void {
    const { events, metrics } = this.#options;
    try {
      if (request.type === "invalid") {
        const { problem } = request;
        return from.send(events.problem(
          problem.code === "unknown_command"
            ? { code: problem.code, command: this.#options.talk.clean(problem.command) }
            : problem,
        ));
      }
      this.after(user, this.perform(this.actorOf(user, from), request), (outcome) => {
        if (!this.#options.users.has(user)) return;
        if (!outcome.ok) {
          if (!outcome.quiet) from.send(outcome.error);
        } else if (outcome.done !== undefined) {
          from.send(events.system("done", { what: outcome.done }));
        }
      }, from);
    } catch (error) {
      metrics.errors.inc();
      log.error("Failed to handle a {type} request from user {id}: {error}", {
        type: request.type,
        id: user.id,
        error,
      });
      from.send(events.error("internal", "internal_error", {}));
    }
  }

  /** Sends the one asking an event of their own. */
  #reply(actor: Actor, event: (user: User) => ChatEvent): Outcome {
    const user = actor.user;
    if (user !== undefined) actor.reply?.send(event(user));
    return DONE;
  }

  #usage(type: RequestType): Outcome {
    const usage = usageOf(type);
    return { ok: false, error: this.#options.events.error("usage", "usage", { usage }) };
  }

  #alreadyIn(room: string): Outcome {
    const error = this.#options.events.error("usage", "already_in_room", { room });
    return { ok: false, error };
  }

  /** Moves `user` to the room `name`, once this instance follows it. */
  #join(user: User, name: string): Settled<Outcome> {
    const { events, membership, talk } = this.#options;
    const wanted = talk.clean(name).trim();
    if (wanted === "") return this.#usage("join");
    const room = membership.open(wanted, { user, address: user.address });
    if (room === "room_invalid") {
      const shown = shownName(wanted);
      return { ok: false, error: events.error("room_invalid", "room_invalid", { room: shown }) };
    }
    if (typeof room === "string") {
      return { ok: false, error: events.error("room_limit", room, {}) };
    }
    // A look-alike of the room's name finds the room itself.
    if (room === user.room) return this.#alreadyIn(user.room.name);
    return settle(this.#options.move(user, room), () => DONE);
  }

  #leave(user: User): Settled<Outcome> {
    if (user.room === this.#options.rooms.lobby) return this.#alreadyIn(LOBBY);
    return this.#join(user, LOBBY);
  }

  #rename(user: User, requested: string): Settled<Outcome> {
    const { events, now, sessions, talk } = this.#options;
    const name = stripWhitespace(talk.clean(requested));
    if (name === "") return this.#usage("setname");
    const refuse = (reason: string): Outcome => ({
      ok: false,
      error: events.error("name_refused", "name_refused", { name: shownName(name), reason }),
    });
    if (user.verified) return refuse("names come from your sign-in token here");
    if (this.#options.moderation.mutedFor(user) !== undefined) return refuse("you are muted");
    // Each rename is told to the room: a few, then one now and then.
    const renames = user.renames ??= new TokenBucket(RENAME_RATE, now());
    if (!renames.available(now())) return refuse("you are renaming too often; wait a minute");
    return settle(sessions.rename(user, name), (reason) => {
      if (reason !== undefined) return refuse(reason);
      renames.take(now());
      return DONE;
    });
  }

  /** The rooms, each with what the asker has not read of it when they said where they stopped. */
  #listRooms(actor: Actor, seen: ReadonlyMap<string, SeenPosition> | undefined): Outcome {
    const { backend, events, membership, rooms } = this.#options;
    // Rooms gone idle are not listed; the rest of the sweep waits for its turn.
    membership.sweep();
    const summaries = backend.roomSummaries();
    if (seen === undefined) {
      actor.reply?.send(events.rooms(summaries));
      return DONE;
    }
    // The session's devices share what was read: the furthest position each reported.
    const read = actor.user?.read.merge(seen, (name) => rooms.find(name)) ?? seen;
    actor.reply?.send(events.rooms(summaries.map((summary) => {
      const position = read.get(summary.name);
      const room = rooms.find(summary.name);
      if (room === undefined || summary.lastSeq === 0) return summary;
      return { ...summary, unread: room.unreadAfter(position?.epoch, position?.seq ?? 0) };
    })));
    return DONE;
  }

  #sendHistory(actor: Actor, room: Room<User>, count = this.#options.config.historySize): Outcome {
    const messages = room.recent(count);
    const to = actor.reply;
    if (messages.length === 0) {
      to?.send(this.#options.events.system("history_empty", { room: room.name }, room));
    }
    for (const message of messages) to?.send(asHistory(message, room.epoch));
    return DONE;
  }

  /** Token mode: the newest private messages between the asker and `peer`, from their inbox. */
  #sendConversation(actor: Actor, user: User, peer: string, count?: number): Outcome {
    const { events, inboxes, talk } = this.#options;
    if (!inboxes.keeps(user)) {
      const reason = "private messages are kept only for signed-in accounts, on this server";
      return { ok: false, error: events.error("bad_request", "bad_request", { reason }) };
    }
    const name = stripWhitespace(talk.clean(peer));
    if (name === "") return this.#usage("history");
    inboxes.conversation(
      user,
      name,
      count ?? this.#options.config.pmHistorySize,
      actor.reply ?? user.sink,
    );
    return DONE;
  }

  #help(actor: Actor, asked: string | undefined): Outcome {
    const { auth, events, talk } = this.#options;
    const context = { moderator: actor.rank > 0, tokenMode: auth.tokenMode };
    if (asked === undefined) {
      actor.reply?.send(events.help(commandSummaries(context), false));
      return DONE;
    }
    const name = talk.clean(asked).trim().replace(/^!/, "").toLowerCase();
    const command = findCommand(name);
    if (command === undefined) {
      const error = events.error("unknown_command", "unknown_command", { text: `!${name}` });
      return { ok: false, error };
    }
    const { usage, summary } = command;
    actor.reply?.send(events.help([{ name, usage, summary }], true));
    return DONE;
  }

  /**
   * Every request draws from the user's bucket and from their address's.
   * An account's devices share the bucket, so its warning and its close go
   * to every one of them.
   */
  #passesFloodControl(user: User): boolean {
    const { events, metrics } = this.#options;
    const now = this.#options.now();
    // A user quiet long enough to fill their bucket again is warned again next time.
    if (user.flood.idle(now)) user.floodWarned = false;
    const own = user.flood.check(now);
    const verdict = user.addressKey === undefined
      ? own
      : worse(own, this.#addressFlood.get(user.addressKey, now).check(now));
    if (verdict === "accept") return true;
    metrics.messagesDropped.inc("flood");
    if (verdict !== "disconnect") {
      // One warning for each user of a flood, whichever bucket ran dry.
      if (user.floodWarned) return false;
      user.floodWarned = true;
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      user.sink.send(events.error("flood", "flood_warning", {}));
    } else {
      log.info("Closing user {id}: kept flooding", { id: user.id });
      metrics.connectionsClosed.inc("flood");
      // Said before the close frame: a client that keeps sending may never read that.
      user.sink.send(events.error("flood", "flood_closed", {}));
      user.sink.close("flood");
      this.#options.disconnect(user);
    }
    return false;
  }
}
