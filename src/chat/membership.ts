/**
 * Who is in which room, here and on other instances: entering and leaving
 * rooms, the notices that go with it, member lists, room listings and the
 * idle-room sweep. The chatroom decides when; this decides how.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { deadline } from "@std/async/deadline";
import { rank } from "../auth/tokens.ts";
import type { Author, Broker, PresenceNote, RemoteUser } from "../broker/types.ts";
import { departureId, isDeparture } from "../broker/departures.ts";
import { addressKey } from "../net/ip.ts";
import { looksLike, MAX_NAME_UNITS, nameKey } from "../text/names.ts";
import type { Metrics } from "../metrics.ts";
import { asHistory, type EventFactory } from "./event_factory.ts";
import { Buckets, Limiter, type Rate } from "../limits.ts";
import type { MembersEvent, RoomSummary, Sink } from "../vocabulary/events.ts";
import type { Removal } from "./moderation.ts";
import type { Room } from "./room.ts";
import type { OpenProblem, RoomDirectory } from "./rooms.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "room"]);

/** How long the server API waits for a cluster to deliver a room it asks about. */
const READ_WAIT_MS = 5000;

/** What a {@linkcode Membership} works with. */
export interface MembershipOptions {
  readonly rooms: RoomDirectory<User>;
  readonly broker: Broker;
  readonly events: EventFactory;
  /** The clock, in milliseconds since the Unix epoch. */
  readonly now: () => number;
  /** Messages replayed to someone entering a room. */
  readonly historySize: number;
  /** Join and leave notices stop above this many members. */
  readonly presenceNoticeMaxMembers: number;
  /** How many join and leave notices one room shows. */
  readonly presenceRate: Rate;
  /** Seconds an empty room is kept once it has held a message (`room_idle_ttl`). */
  readonly roomIdleTtl: number;
  /** How many rooms one user, and one client address, may create... */
  readonly roomCreateRate: Rate;
  /** ...and everyone together. */
  readonly serverRoomCreateRate: Rate;
  readonly metrics: Metrics;
}

/**
 * Why a room could not be opened: see {@linkcode OpenProblem}, or created
 * too fast by this user or address, or by everyone together.
 */
export type OpenRefusal = OpenProblem | "room_create_limit" | "room_create_busy";

/** The notice that goes with arriving in a room. */
export type ArrivalNotice = "connected" | "joined";
/** The notice that goes with leaving a room. */
export type DepartureNotice = "disconnected" | "left";

/** Room membership across the cluster, for one server's users. */
export class Membership {
  readonly #rooms: RoomDirectory<User>;
  readonly #broker: Broker;
  readonly #events: EventFactory;
  readonly #now: () => number;
  readonly #historySize: number;
  readonly #noticeMaxMembers: number;
  readonly #roomIdleTtl: number;
  readonly #metrics: Metrics;
  /** Join and leave notices left, by room key. */
  readonly #notices: Buckets<Limiter>;
  /** Rooms left to create, by `user:<id>` and `address:<address>`... */
  readonly #creations: Buckets<Limiter>;
  /** ...and by everyone, so many addresses together cannot fill `max_rooms` at once. */
  readonly #serverCreations: Limiter;
  /** When each address last created a room past a spent server-wide rate. */
  readonly #newcomers = new Map<string, number>();

  constructor(options: MembershipOptions) {
    this.#rooms = options.rooms;
    this.#broker = options.broker;
    this.#events = options.events;
    this.#now = options.now;
    this.#historySize = options.historySize;
    this.#noticeMaxMembers = options.presenceNoticeMaxMembers;
    this.#roomIdleTtl = options.roomIdleTtl;
    this.#metrics = options.metrics;
    this.#notices = new Buckets((now) => new Limiter(options.presenceRate, now));
    this.#creations = new Buckets((now) => new Limiter(options.roomCreateRate, now));
    this.#serverCreations = new Limiter(options.serverRoomCreateRate, options.now());
  }

  /**
   * The room called `name`, created when missing (see {@linkcode RoomDirectory.open});
   * a user or an address that creates rooms too fast is refused, and so is
   * everyone while rooms are created too fast on this server. When no more
   * rooms may exist, idle ones go first, then the one least worth keeping
   * (see {@linkcode RoomDirectory.reclaim}).
   */
  open(name: string, by: { user?: User; address?: string } = {}): Room<User> | OpenRefusal {
    // A room people are in on another instance exists already: it is not new here.
    const existing = this.#rooms.find(name) ?? this.#ensureElsewhere(name, false);
    if (existing !== undefined) return this.#arriving(existing);
    const now = this.#now();
    const takers = [
      ...(by.user === undefined ? [] : [this.#creations.get(`user:${by.user.id}`, now)]),
      ...(by.address === undefined
        ? []
        : [this.#creations.get(`address:${addressKey(by.address)}`, now)]),
    ];
    // Every limit must have a creation left; a refusal takes nothing.
    if (takers.some((limit) => !limit.available(now))) return "room_create_limit";
    // A look-alike of a room elsewhere is looked for among everyone, so only once the
    // creator's own limits allow a creation.
    const alike = this.#ensureElsewhere(name, true);
    if (alike !== undefined) return this.#arriving(alike);
    if (!this.#serverCreations.available(now) && !this.#newcomer(by, takers, now)) {
      return "room_create_busy";
    }
    let opened = this.#rooms.open(name);
    if (opened === "room_limit" && this.sweep().length > 0) opened = this.#rooms.open(name);
    if (opened === "room_limit") {
      const reclaimed = this.#rooms.reclaim(this.#inUseElsewhere());
      if (reclaimed !== undefined) {
        this.#broker.log.removed(reclaimed.name, this.#quietSince());
        this.#metrics.roomsReclaimed.inc();
        log.info("Removed the empty room {room} to make way for {name}", {
          room: reclaimed.name,
          name,
        });
        opened = this.#rooms.open(name);
      }
    }
    if (typeof opened === "object") {
      for (const limit of [...takers, this.#serverCreations]) limit.take(now);
      this.#arriving(opened);
    }
    return opened;
  }

  /** Forgets the rate limits of whoever has been quiet long enough. */
  sweepLimits(): void {
    const now = this.#now();
    this.#notices.sweep(now);
    this.#creations.sweep(now);
    for (const [address, at] of this.#newcomers) {
      if (now - at >= this.#roomIdleTtl * 1000) this.#newcomers.delete(address);
    }
  }

  /**
   * Sends `user` (or one device of theirs, `to`) what they missed of `room`: with the position of the last
   * message they saw there, exactly what came after it (preceded by a gap
   * event when that cannot be exact), else its recent history.
   */
  sendBacklog(
    user: User,
    room: Room<User>,
    seen?: { epoch?: string; seq: number },
    to: Sink = user.sink,
  ): void {
    const { messages, gap } = seen === undefined
      ? { messages: room.recent(this.#historySize), gap: undefined }
      : room.backlogAfter(seen.epoch, seen.seq);
    if (gap !== undefined) to.send(this.#events.gap(room, gap));
    for (const message of messages) to.send(asHistory(message, room.epoch));
  }

  /** Puts `user` in `room`; everyone else hears of it unless `notice` is `undefined`. */
  enter(user: User, room: Room<User>, notice: ArrivalNotice | undefined): void {
    room.members.add(user);
    this.#rooms.occupied(room);
    user.room = room;
    this.announceName(user);
    if (notice !== undefined && this.#announcesPresence(room)) this.announce(user, "join", notice);
  }

  /** Tells the other instances where `user` is, and their rank. */
  announceName(user: User): void {
    this.#broker.cluster?.names.announce(user.name, {
      userId: user.id,
      room: user.room.name,
      rank: rank(user.roles),
    });
  }

  /**
   * Takes `user` out of their room, telling those left behind unless
   * `notice` is `undefined`. A moderator's removal is always told.
   */
  exit(user: User, notice: DepartureNotice | undefined, removal?: Removal): void {
    const room = user.room;
    if (!room.members.has(user)) return;
    // Counted with the leaver, as a join is counted with the newcomer.
    const announce = removal !== undefined ||
      (notice !== undefined && this.#announcesPresence(room));
    room.members.delete(user);
    if (room.members.size === 0) this.#rooms.vacated(room);
    if (!announce) return;
    if (removal !== undefined) {
      const { notice: removed, by, reason } = removal;
      this.announce(user, "leave", removed, { by, reason });
    } else if (notice !== undefined) {
      this.announce(user, "leave", notice);
    }
  }

  /** Tells the user's room, here and elsewhere, that they arrived, left or were renamed. */
  announce(
    user: User,
    action: PresenceNote["action"],
    notice: PresenceNote["notice"],
    details: { oldName?: string; by?: string; reason?: string } = {},
  ): void {
    // The end of a session (not a move) has the id its instance's survivors would give it: said
    // by both (this instance was cut off meanwhile), it shows once.
    this.#broker.log.publish({
      kind: "presence",
      room: user.room.name,
      id: isDeparture({ action, notice })
        ? departureId(this.#broker.instance, user.id)
        : this.#events.nextId(),
      sentAt: this.#now(),
      author: this.author(user),
      action,
      notice,
      ...details,
    });
  }

  /** Who a note from `user` is by. */
  author(user: User): Author {
    return { instance: this.#broker.instance, userId: user.id, name: user.name };
  }

  /** Who is in `room`, here and elsewhere; when `user` is entering (or back in) it, they come last. */
  members(user: User, room: Room<User>, entering: boolean): MembersEvent {
    const names: string[] = [];
    for (const member of room.members) {
      if (!entering || member !== user) names.push(member.name);
    }
    for (const other of this.#remoteMembers(room.name)) names.push(other.name);
    if (entering) names.push(user.name);
    return this.#events.members(room, names, entering);
  }

  /** Every room in the cluster with its members everywhere. */
  summaries(): RoomSummary[] {
    return this.#rooms.summaries(this.learnRemoteRooms());
  }

  /**
   * Makes sure the rooms users of other instances are in exist here too,
   * and counts those users by room key.
   */
  learnRemoteRooms(): Map<string, number> {
    const remote = new Map<string, number>();
    for (const other of this.#broker.cluster?.names.users() ?? []) {
      this.#rooms.ensure(other.room);
      const key = nameKey(other.room);
      remote.set(key, (remote.get(key) ?? 0) + 1);
    }
    return remote;
  }

  /**
   * What `then` makes of the room called `name`, read up to date here (in a
   * cluster, a room nobody here is in is followed for the while it takes);
   * `undefined` when there is no such room. Rejects when the room cannot be
   * read within 5 s.
   */
  async whileRead<T>(name: string, then: (room: Room<User>) => T): Promise<T | undefined> {
    this.learnRemoteRooms();
    const room = this.#rooms.find(name);
    if (room === undefined) return undefined;
    const { log } = this.#broker;
    try {
      await deadline(Promise.resolve(log.follow(room.name)), READ_WAIT_MS);
      return then(room);
    } finally {
      if (room.members.size === 0) log.unfollow(room.name);
    }
  }

  /** Removes the rooms idle for `room_idle_ttl` everywhere, with their history, and returns them. */
  sweep(): Room<User>[] {
    const removed = this.#rooms.sweep(this.#inUseElsewhere());
    for (const room of removed) this.#broker.log.removed(room.name, this.#quietSince());
    return removed;
  }

  /**
   * Since when a room removed here must have been quiet everywhere for its
   * history to go with it: `room_idle_ttl` ago. This instance's view of a
   * room it does not follow says nothing of what others said in it.
   */
  #quietSince(): number {
    return this.#now() - this.#roomIdleTtl * 1000;
  }

  /**
   * The room of `name` that has members elsewhere, now here too: by its
   * name key (cheap), or with `alike` by any look-alike (a look at everyone).
   */
  #ensureElsewhere(name: string, alike: boolean): Room<User> | undefined {
    if (name.length > MAX_NAME_UNITS || this.#broker.cluster === undefined) return undefined;
    const { names } = this.#broker.cluster;
    for (const other of alike ? names.users() : names.members(name)) {
      if (!alike || looksLike(other.room, name)) return this.#rooms.ensure(other.room);
    }
    return undefined;
  }

  /**
   * Whether a creation may pass the spent server-wide rate: the server API
   * (trusted), and an address's first room within `room_idle_ttl`, so that a
   * crowd spending the rate cannot keep newcomers out (a crowd of fresh
   * addresses gets one room each for it, then waits like everyone).
   */
  #newcomer(by: { user?: User; address?: string }, takers: Limiter[], now: number): boolean {
    if (by.user === undefined && by.address === undefined) return true;
    if (by.address === undefined || !takers.every((limit) => limit.full(now))) return false;
    const key = addressKey(by.address);
    const last = this.#newcomers.get(key);
    if (last !== undefined && now - last < this.#roomIdleTtl * 1000) return false;
    this.#newcomers.set(key, now);
    return true;
  }

  /** `room`, spared being reclaimed while whoever opened it is on the way in. */
  #arriving(room: Room<User>): Room<User> {
    if (room !== this.#rooms.lobby) this.#rooms.arriving(room);
    return room;
  }

  /** Name keys of the rooms that have members on other instances. */
  #inUseElsewhere(): Set<string> {
    const rooms = new Set<string>();
    for (const other of this.#broker.cluster?.names.users() ?? []) rooms.add(nameKey(other.room));
    return rooms;
  }

  /** The users of other instances in `room`. */
  #remoteMembers(room: string): Iterable<RemoteUser> {
    return this.#broker.cluster?.names.members(room) ?? [];
  }

  /**
   * Join and leave notices stop in big rooms, where a mass reconnect would
   * cost O(n²) frames, and beyond the room's notice rate, so that churn
   * cannot flood a room with them.
   */
  #announcesPresence(room: Room<User>): boolean {
    let members = room.members.size;
    for (const _ of this.#remoteMembers(room.name)) {
      if (++members > this.#noticeMaxMembers) return false;
    }
    if (members > this.#noticeMaxMembers) return false;
    if (this.#notices.get(nameKey(room.name), this.#now()).take(this.#now())) return true;
    this.#metrics.presenceSuppressed.inc();
    return false;
  }
}
