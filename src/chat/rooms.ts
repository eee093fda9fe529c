/**
 * Every room of one server: the lobby, finding and opening rooms within the
 * room limit, and removing the ones left empty too long.
 *
 * @module
 */

import { comparisonKeys, MAX_NAME_UNITS, nameKey } from "../text/names.ts";
import type { RoomSummary } from "../vocabulary/events.ts";
import { isRoomName, LOBBY, Room } from "./room.ts";

/** What a {@linkcode RoomDirectory} is built from. */
export interface RoomDirectoryOptions {
  /** Messages each room keeps. */
  readonly historySize: number;
  /** Rooms that may exist at once, the lobby included. */
  readonly maxRooms: number;
  /** Seconds an empty room (not the lobby) is kept once it has held a message. */
  readonly idleTtl: number;
  /** Seconds an empty room that never held a message is kept. */
  readonly unusedTtl: number;
  /** The clock, in milliseconds. */
  readonly now: () => number;
  /** The epoch of a room's log, from the broker that keeps it. */
  readonly epochOf: (room: string) => string;
}

/** How long a room someone is on the way into is spared from being removed. */
const ARRIVAL_GRACE_MS = 30_000;

/** Why {@linkcode RoomDirectory.open} could not give a room. */
export type OpenProblem = "room_invalid" | "room_limit";

/** The rooms of one server, by {@linkcode nameKey}. */
export class RoomDirectory<M> {
  readonly lobby: Room<M>;
  readonly #options: RoomDirectoryOptions;
  readonly #rooms = new Map<string, Room<M>>();
  /** The same rooms by each of their {@linkcode comparisonKeys}: a room is found by any. */
  readonly #byKey = new Map<string, Room<M>>();
  /** When each room with no member here became empty (milliseconds). */
  readonly #emptySince = new Map<Room<M>, number>();
  /** Rooms someone is on the way into (or a first message is being stored for), since when. */
  readonly #arriving = new Map<Room<M>, number>();

  constructor(options: RoomDirectoryOptions) {
    this.#options = options;
    this.lobby = new Room(LOBBY, {
      historySize: options.historySize,
      epoch: options.epochOf(LOBBY),
    });
    this.#rooms.set(LOBBY, this.lobby);
    for (const key of comparisonKeys(LOBBY)) this.#byKey.set(key, this.lobby);
  }

  /** Every room, oldest first. */
  all(): IterableIterator<Room<M>> {
    return this.#rooms.values();
  }

  /**
   * The room with this name (compared as names are), if it exists; a name
   * too long to be one is not even normalized.
   */
  find(name: string): Room<M> | undefined {
    if (name.length > MAX_NAME_UNITS) return undefined;
    // Rooms are usually named in their own spelling, which needs no normalizing.
    const room = this.#rooms.get(name);
    if (room !== undefined) return room;
    for (const key of comparisonKeys(name)) {
      const alike = this.#byKey.get(key);
      if (alike !== undefined) return alike;
    }
    return undefined;
  }

  /**
   * The room called `name`, created when missing; a problem when the name is
   * not a room name or no more rooms may be created.
   */
  open(name: string): Room<M> | OpenProblem {
    if (name.length > MAX_NAME_UNITS || !isRoomName(name)) return "room_invalid";
    const existing = this.find(name);
    if (existing !== undefined) return existing;
    if (this.#rooms.size >= this.#options.maxRooms) return "room_limit";
    return this.#create(name);
  }

  /**
   * Records that someone is on the way into `room` (or a bot's message to
   * it is being stored): it is spared by {@linkcode RoomDirectory.reclaim}
   * and the sweep until they are in, for 30 s at most.
   */
  arriving(room: Room<M>): void {
    this.#arriving.set(room, this.#options.now());
  }

  /**
   * Removes the room least worth keeping, to make way for a new one, and
   * returns it: never the lobby nor a room with members here or in
   * `inUseElsewhere` (name keys), nor one someone is on the way into; of the
   * others, the one that held the fewest messages, then the one empty the
   * longest. A room a flood of addresses made and said one line in goes
   * before a room people talk in.
   */
  reclaim(inUseElsewhere: ReadonlySet<string>): Room<M> | undefined {
    this.#forgetArrivals(this.#options.now());
    let least: Room<M> | undefined;
    let leastSince = 0;
    for (const [room, since] of this.#emptySince) {
      if (this.#arriving.has(room) || inUseElsewhere.has(nameKey(room.name))) continue;
      const fewer = least === undefined || room.lastSeq < least.lastSeq ||
        (room.lastSeq === least.lastSeq && since < leastSince);
      if (fewer) [least, leastSince] = [room, since];
    }
    if (least !== undefined) this.#remove(least);
    return least;
  }

  /**
   * The room called `name`, as another instance named it: created here when
   * missing, whatever the limit, since it exists in the cluster already.
   */
  ensure(name: string): Room<M> {
    const existing = this.find(name);
    if (existing !== undefined) return existing;
    return this.#create(name);
  }

  /** Records that `room` has members here again. */
  occupied(room: Room<M>): void {
    this.#emptySince.delete(room);
    this.#arriving.delete(room);
  }

  /** Records that the last member here left `room`. */
  vacated(room: Room<M>): void {
    if (room !== this.lobby) this.#emptySince.set(room, this.#options.now());
  }

  /**
   * Removes the rooms empty for the idle TTL and returns them. Rooms in
   * `inUseElsewhere` (name keys) have members on other instances: they stay,
   * and their idle time starts again.
   */
  sweep(inUseElsewhere: ReadonlySet<string>): Room<M>[] {
    const now = this.#options.now();
    const removed: Room<M>[] = [];
    this.#forgetArrivals(now);
    for (const [room, since] of this.#emptySince) {
      if (this.#arriving.has(room)) continue;
      // A room nobody ever spoke in goes soon, so that empty rooms cannot fill the limit.
      const ttl = (room.lastSeq === 0 ? this.#options.unusedTtl : this.#options.idleTtl) * 1000;
      if (inUseElsewhere.has(nameKey(room.name))) {
        this.#emptySince.set(room, now);
      } else if (now - since >= ttl) {
        this.#remove(room);
        removed.push(room);
      }
    }
    return removed;
  }

  /** Forgets the arrivals older than the grace they get: whoever it was gave up. */
  #forgetArrivals(now: number): void {
    for (const [room, since] of this.#arriving) {
      if (now - since >= ARRIVAL_GRACE_MS) this.#arriving.delete(room);
    }
  }

  #remove(room: Room<M>): void {
    this.#emptySince.delete(room);
    this.#arriving.delete(room);
    this.#rooms.delete(nameKey(room.name));
    for (const key of comparisonKeys(room.name)) {
      if (this.#byKey.get(key) === room) this.#byKey.delete(key);
    }
  }

  /** Every room with its member count: `remote` adds members elsewhere, by name key. */
  summaries(remote: ReadonlyMap<string, number>): RoomSummary[] {
    return [...this.#rooms].map(([key, room]) => ({
      name: room.name,
      members: room.members.size + (remote.get(key) ?? 0),
      lastSeq: room.lastSeq,
    }));
  }

  /** A new room, empty until someone here enters it. */
  #create(name: string): Room<M> {
    const { historySize, epochOf } = this.#options;
    const room = new Room<M>(name, { historySize, epoch: epochOf(name) });
    this.#rooms.set(nameKey(name), room);
    for (const key of comparisonKeys(name)) this.#byKey.set(key, room);
    this.#emptySince.set(room, this.#options.now());
    return room;
  }
}
