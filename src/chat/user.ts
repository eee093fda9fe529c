/**
 * A connected user, as the chat logic sees it: no socket, only a
 * {@linkcode Sink} to send events to.
 *
 * @module
 */

import type { Sink } from "./events.ts";
import type { FloodGuard } from "./flood.ts";
import type { Room } from "./room.ts";

/** A user in the chat. */
export class User {
  /** Unique for the life of the process; used in logs. */
  readonly id: number;
  readonly sink: Sink;
  /** This user's flood control. */
  readonly flood: FloodGuard;
  /** Secret that lets a new connection take over this session (see `resume`). */
  readonly token: string = crypto.randomUUID();
  /** The room the user is in, or is entering. */
  room: Room<User>;
  #name: string;

  constructor(
    id: number,
    name: string,
    options: { sink: Sink; flood: FloodGuard; room: Room<User> },
  ) {
    this.id = id;
    this.#name = name;
    this.sink = options.sink;
    this.flood = options.flood;
    this.room = options.room;
  }

  /** The name others see; changed only through the chatroom so its index stays true. */
  get name(): string {
    return this.#name;
  }

  /** @internal Called by the chatroom, which keeps the name index. */
  rename(name: string): void {
    this.#name = name;
  }
}
