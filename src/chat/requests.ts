/**
 * What users ask of the chat, whichever protocol it came in: flood control
 * first, then each request's rule, once. A request that waits for the other
 * instances (a name, a room not read here yet) makes the user's later
 * requests wait after it, in order.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { rank } from "../auth/tokens.ts";
import type { Broker, PrivateNote, Settled } from "../broker/types.ts";
import { commandSummaries, findCommand, usageOf } from "../vocabulary/commands.ts";
import type { ChatConfig } from "../config/mod.ts";
import { formatDuration } from "../text/duration.ts";
import type { MessageKey, MessageValues } from "../messages.ts";
import type { Metrics } from "../metrics.ts";
import { nameKey } from "../text/names.ts";
import type { Backend } from "./backend.ts";
import { asHistory, type EventFactory } from "./event_factory.ts";
import type { ClientRequest, ErrorCode, SeenPosition } from "../vocabulary/events.ts";
import { Buckets, FloodGuard, TokenBucket, worse } from "../limits.ts";
import type { Membership } from "./membership.ts";
import type { Moderation } from "./moderation.ts";
import { ModeratorCommands } from "./moderator_commands.ts";
import { LOBBY, type Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import { cleanText, stripWhitespace, truncateText } from "../text/sanitize.ts";
import type { Sessions } from "./sessions.ts";
import type { ChatAuth, SignIns } from "./sign_in.ts";
import type { User } from "./user.ts";
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
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly users: UserDirectory;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly sessions: Sessions;
  readonly moderation: Moderation;
  readonly signIns: SignIns;
  readonly backend: Backend;
  readonly auth: ChatAuth;
  /** Ends the session of `user`, telling their room. */
  readonly disconnect: (user: User) => void;
  /** Takes `user` out of their room, telling it they left. */
  readonly leaveRoom: (user: User) => void;
  /** Tells `user`, entering `room`, its topic when it has one. */
  readonly sendTopic: (user: User, room: Room<User>) => void;
  /** Hands a private message to its recipient here. */
  readonly deliverPrivate: (note: PrivateNote) => void;
}

/** The requests of every user of one chat server. */
export class Requests {
  readonly #options: RequestsOptions;
  /** Flood control of each client address, across its connections and reconnects. */
  readonly #addressFlood: Buckets<FloodGuard>;
  readonly #moderatorCommands: ModeratorCommands;

  constructor(options: RequestsOptions) {
    this.#options = options;
    const { addressRate, addressBurst, disconnectAfter } = options.config.flood;
    this.#addressFlood = new Buckets((now) =>
      new FloodGuard({ rate: addressRate, burst: addressBurst, disconnectAfter }, now)
    );
    const { auth, events, metrics, moderation, now } = options;
    this.#moderatorCommands = new ModeratorCommands({
      now,
      events,
      metrics,
      moderation,
      operatorPassword: auth.tokenMode ? undefined : auth.operatorPassword,
      after: (user, settled, then) => this.after(user, settled, then),
    });
  }

  /**
   * Handles one request, after flood control. The request's text is cleaned
   * and checked here, once, whichever protocol it came in. While an earlier
   * request waits for the other instances, later ones wait after it. An
   * unexpected error is logged and answered to this user only.
   */
  handle(user: User, request: ClientRequest): void {
    if (!this.#options.users.has(user) || !this.#passesFloodControl(user)) return;
    const waiting = user.waiting;
    if (waiting === undefined) return this.#dispatchSafely(user, request);
    if (waiting.length < MAX_WAITING) waiting.push(request);
    else this.#options.metrics.messagesDropped.inc("flood");
  }

  /**
   * Runs `then` once `settled` is: at once when it is ready, else later,
   * with the user's requests waiting meanwhile and handled after it, in order.
   */
  after<T>(user: User, settled: Settled<T>, then: (value: T) => void): void {
    if (!(settled instanceof Promise)) return then(settled);
    const { users } = this.#options;
    const step = {};
    user.step = step;
    user.waiting ??= [];
    settled.then(then).catch((error) => {
      log.error("A request of user {id} could not be completed: {error}", { id: user.id, error });
      if (users.has(user)) this.#fail(user, "unavailable", "not_sent", {});
    }).finally(() => {
      // A step started by `then` takes the waiting requests over.
      if (user.step !== step) return;
      user.step = undefined;
      const waiting = user.waiting ?? [];
      user.waiting = undefined;
      for (let request = waiting.shift(); request !== undefined; request = waiting.shift()) {
        if (!users.has(user)) return;
        this.#handleInTurn(user, request);
      }
    });
  }

  /** Client text made safe to show and cut to `max_message_len`. */
  clean(text: string): string {
    return truncateText(cleanText(text), this.#options.config.maxMessageLen);
  }

  /** Forgets the flood control of addresses quiet long enough. */
  sweep(): void {
    this.#addressFlood.sweep(this.#options.now());
  }

  /** Handles a request that waited, unless a newer step makes it wait again. */
  #handleInTurn(user: User, request: ClientRequest): void {
    if (user.waiting === undefined) this.#dispatchSafely(user, request);
    else user.waiting.push(request);
  }

  #dispatchSafely(user: User, request: ClientRequest): void {
    try {
      this.#dispatch(user, request);
    } catch (error) {
      this.#options.metrics.errors.inc();
      log.error("Failed to handle a {type} request from user {id}: {error}", {
        type: request.type,
        id: user.id,
        error,
      });
      this.#fail(user, "internal", "internal_error", {});
    }
  }

  #dispatch(user: User, request: ClientRequest): void {
    const { config, events, membership, rooms, signIns } = this.#options;
    switch (request.type) {
      case "say":
      case "me": {
        const text = this.clean(request.text);
        if (text.trim() !== "") return this.#say(user, text, request.type === "me");
        if (request.type === "me") return this.#usage(user, "me");
        return this.#options.metrics.messagesDropped.inc("empty");
      }
      case "pm": {
        const to = stripWhitespace(this.clean(request.to));
        const text = this.clean(request.text);
        if (to === "" || text.trim() === "") return this.#usage(user, "pm");
        return this.#sendPrivate(user, to, text);
      }
      case "join": {
        const room = this.clean(request.room).trim();
        return room === "" ? this.#usage(user, "join") : this.#join(user, room);
      }
      case "leave":
        if (user.room !== rooms.lobby) return this.#join(user, LOBBY);
        return this.#fail(user, "usage", "already_in_room", { room: LOBBY });
      case "setname": {
        const name = stripWhitespace(this.clean(request.name));
        return name === "" ? this.#usage(user, "setname") : this.#rename(user, name);
      }
      case "rooms":
        return this.#listRooms(user, request.seen);
      case "members":
        return user.sink.send(membership.members(user, user.room, false));
      case "history":
        return this.#sendHistory(user, request.count ?? config.historySize);
      case "help":
        return this.#help(user, request.command);
      case "about":
        return user.sink.send(events.system("about", {}));
      case "env":
        return user.sink.send(events.system("env", { env: config.environment }));
      case "ping":
        return user.sink.send(events.system("pong", {}));
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
        return signIns.refresh(user, request.auth);
      case "invalid": {
        const { problem } = request;
        return user.sink.send(events.problem(
          problem.code === "unknown_command"
            ? { code: problem.code, command: this.clean(problem.command) }
            : problem,
        ));
      }
    }
  }

  /** Whether `user` may speak now: not muted, and not too soon in a slow room. */
  #maySpeak(user: User): boolean {
    const { moderation } = this.#options;
    const muted = moderation.mutedFor(user);
    if (muted !== undefined) {
      this.#fail(user, "muted", "still_muted", { duration: formatDuration(muted) });
      return false;
    }
    const wait = moderation.slowWait(user);
    if (wait === undefined) return true;
    this.#fail(user, "slow", "slow_wait", { room: user.room.name, seconds: String(wait) });
    return false;
  }

  #say(user: User, text: string, emote: boolean): void {
    if (!this.#maySpeak(user)) return;
    const { broker, events, membership, now } = this.#options;
    const accepted = broker.publishRoomNote({
      kind: "message",
      room: user.room.name,
      id: events.nextId(),
      sentAt: now(),
      author: membership.author(user),
      text,
      emote,
    });
    if (!accepted) this.#fail(user, "unavailable", "not_sent", {});
  }

  #sendPrivate(from: User, name: string, text: string): void {
    const { broker, events, moderation, now, users } = this.#options;
    const muted = moderation.mutedFor(from);
    if (muted !== undefined) {
      return this.#fail(from, "muted", "still_muted", { duration: formatDuration(muted) });
    }
    const local = users.find(name);
    const remote = local === undefined ? broker.findRemote(name) : undefined;
    const to = local?.name ?? remote?.name;
    if (to === undefined) return this.#fail(from, "user_not_found", "user_not_found", { name });
    const note: PrivateNote = { id: events.nextId(), sentAt: now(), from: from.name, to, text };
    if (remote === undefined) this.#options.deliverPrivate(note);
    else broker.publishPrivate(note, remote);
    from.sink.send(events.private(note, "sent"));
  }

  /** Moves `user` to the room `name`, once this instance follows it. */
  #join(user: User, name: string): void {
    if (nameKey(name) === nameKey(user.room.name)) {
      return this.#fail(user, "usage", "already_in_room", { room: user.room.name });
    }
    const { broker, membership, users } = this.#options;
    const room = membership.open(name, { user, address: user.address });
    if (room === "room_invalid") return this.#fail(user, room, room, { room: name });
    if (room === "room_limit") return this.#fail(user, room, room, {});
    if (room === "room_create_limit") return this.#fail(user, "room_limit", room, {});
    // A look-alike of the room's name finds the room itself.
    if (room === user.room) {
      return this.#fail(user, "usage", "already_in_room", { room: user.room.name });
    }
    this.after(user, broker.follow(room.name), () => {
      if (!users.has(user)) return;
      this.#options.leaveRoom(user);
      user.sink.send(membership.members(user, room, true));
      this.#options.sendTopic(user, room);
      membership.sendBacklog(user, room);
      membership.enter(user, room, "joined");
    });
  }

  #rename(user: User, name: string): void {
    const refuse = (reason: string) =>
      this.#fail(user, "name_refused", "name_refused", { name, reason });
    if (user.verified) return refuse("names come from your sign-in token here");
    const { moderation, now, sessions } = this.#options;
    if (moderation.mutedFor(user) !== undefined) return refuse("you are muted");
    // Each rename is told to the room: a few, then one now and then.
    const renames = user.renames ??= new TokenBucket(RENAME_RATE, now());
    if (!renames.available(now())) return refuse("you are renaming too often; wait a minute");
    const reason = sessions.rename(user, name);
    if (reason !== undefined) return refuse(reason);
    renames.take(now());
  }

  /** The rooms, each with what `user` has not read of it when they said where they stopped. */
  #listRooms(user: User, seen: ReadonlyMap<string, SeenPosition> | undefined): void {
    const { backend, events, membership, rooms } = this.#options;
    // Rooms gone idle are not listed; the rest of the sweep waits for its turn.
    membership.sweep();
    const summaries = backend.roomSummaries();
    if (seen === undefined) return user.sink.send(events.rooms(summaries));
    user.sink.send(events.rooms(summaries.map((summary) => {
      const position = seen.get(summary.name);
      const room = rooms.find(summary.name);
      if (room === undefined || summary.lastSeq === 0) return summary;
      return { ...summary, unread: room.unreadAfter(position?.epoch, position?.seq ?? 0) };
    })));
  }

  #sendHistory(user: User, count: number): void {
    const room = user.room;
    const messages = room.recent(count);
    if (messages.length === 0) {
      const empty = this.#options.events.system("history_empty", { room: room.name }, room.name);
      return user.sink.send(empty);
    }
    for (const message of messages) user.sink.send(asHistory(message, room.epoch));
  }

  #help(user: User, asked: string | undefined): void {
    const { auth, events } = this.#options;
    if (asked === undefined) {
      const commands = commandSummaries({
        moderator: rank(user.roles) > 0,
        tokenMode: auth.tokenMode,
        operatorPassword: auth.operatorPassword !== undefined,
      });
      return user.sink.send(events.help(commands, false));
    }
    const name = this.clean(asked).trim().replace(/^!/, "").toLowerCase();
    const command = findCommand(name);
    if (command === undefined) {
      return this.#fail(user, "unknown_command", "unknown_command", { text: `!${name}` });
    }
    const { usage, summary } = command;
    user.sink.send(events.help([{ name, usage, summary }], true));
  }

  /** Answers a request whose needed text is missing with how to spell it. */
  #usage(user: User, command: "me" | "pm" | "join" | "setname"): void {
    this.#fail(user, "usage", "usage", { usage: usageOf(command) });
  }

  /** Every request draws from the user's bucket and from their address's. */
  #passesFloodControl(user: User): boolean {
    const { metrics } = this.#options;
    const now = this.#options.now();
    // A user quiet long enough to fill their bucket again is warned again next time.
    if (user.flood.idle(now)) user.floodWarned = false;
    const own = user.flood.check(now);
    const verdict = user.address === undefined
      ? own
      : worse(own, this.#addressFlood.get(user.address, now).check(now));
    if (verdict === "accept") return true;
    metrics.messagesDropped.inc("flood");
    if (verdict !== "disconnect") {
      // One warning for each user of a flood, whichever bucket ran dry.
      if (user.floodWarned) return false;
      user.floodWarned = true;
      log.info("User {id} is flooding; dropping messages", { id: user.id });
      this.#fail(user, "flood", "flood_warning", {});
    } else {
      log.info("Closing user {id}: kept flooding", { id: user.id });
      metrics.connectionsClosed.inc("flood");
      // Said before the close frame: a client that keeps sending may never read that.
      this.#fail(user, "flood", "flood_closed", {});
      user.sink.close("flood");
      this.#options.disconnect(user);
    }
    return false;
  }

  #fail<K extends MessageKey>(user: User, code: ErrorCode, key: K, values: MessageValues<K>): void {
    user.sink.send(this.#options.events.error(code, key, values));
  }
}
