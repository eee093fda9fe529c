/**
 * A connected user, as the chat logic sees it: no socket, only a
 * {@linkcode Sink} to send events to.
 *
 * @module
 */

import type { FloodGuard } from "./flood.ts";

/** Who an event is from, as the original protocol names it. */
export type Origin = "SERVER" | "USER" | "SELF" | "PRIVATE";

/** One event the server sends to a user. */
export interface ChatEvent {
  readonly origin: Origin;
  readonly body: string;
  readonly sentAt: Date;
}

/** Where a user's events go; the connection behind it never throws. */
export interface Sink {
  send(event: ChatEvent): void;
  close(code: number, reason: string): void;
}

/** A user in the chat. */
export class User {
  /** Unique for the life of the process; used in logs. */
  readonly id: number;
  readonly sink: Sink;
  /** This user's flood control. */
  readonly flood: FloodGuard;
  #name: string;

  constructor(id: number, name: string, sink: Sink, flood: FloodGuard) {
    this.id = id;
    this.#name = name;
    this.sink = sink;
    this.flood = flood;
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
