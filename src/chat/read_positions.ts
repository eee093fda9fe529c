/**
 * Where a session stopped reading each room, as its devices report it: in
 * token mode an account's devices share one session, so what was read on
 * the phone counts as read on the laptop.
 *
 * @module
 */

import { MAX_SEEN_ROOMS, type SeenPosition } from "../vocabulary/arguments.ts";

/** What a room is, for its read position: its name, the epoch of its log and its newest seq. */
export interface RoomAt {
  readonly name: string;
  readonly epoch: string;
  readonly lastSeq: number;
}

/** Whether `position` is further than `kept` in a room whose log is in `epoch`. */
function isFurther(position: SeenPosition, kept: SeenPosition | undefined, epoch: string): boolean {
  if (kept === undefined) return true;
  // A position of another epoch counts the room's old numbering: any of this epoch is further.
  if ((position.epoch === epoch) !== (kept.epoch === epoch)) return position.epoch === epoch;
  return position.seq > kept.seq;
}

/**
 * One session's read positions, one per room that exists, and at most as
 * many as one request may report ({@linkcode MAX_SEEN_ROOMS}): so many go
 * to another instance with the session, which reads them as it reads a
 * request's (with more than `max_rooms` rooms, the rooms first read keep
 * their positions).
 */
export class ReadPositions {
  readonly #positions = new Map<string, SeenPosition>();

  /** The positions kept, by room name: what a session moving to another instance takes along. */
  get all(): ReadonlyMap<string, SeenPosition> {
    return this.#positions;
  }

  /**
   * Takes the positions a device reports (`seen`, by room name as it spelt
   * it) where they are further than the ones kept, forgets rooms that are
   * gone, and returns the positions now kept, by each room's own name.
   */
  merge(
    seen: ReadonlyMap<string, SeenPosition>,
    find: (name: string) => RoomAt | undefined,
  ): ReadonlyMap<string, SeenPosition> {
    const positions = this.#positions;
    for (const name of positions.keys()) {
      if (find(name) === undefined) positions.delete(name);
    }
    for (const [name, position] of seen) {
      const room = find(name);
      if (room === undefined) continue;
      // Nobody read past the newest message: a position beyond it would hide the next ones.
      const read = position.epoch === room.epoch && position.seq > room.lastSeq
        ? { epoch: room.epoch, seq: room.lastSeq }
        : position;
      const kept = positions.get(room.name);
      if (kept === undefined && positions.size >= MAX_SEEN_ROOMS) continue;
      if (isFurther(read, kept, room.epoch)) positions.set(room.name, read);
    }
    return positions;
  }
}
