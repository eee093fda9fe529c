/**
 * A room: its members and its recent history, numbered per room.
 *
 * @module
 */

import type { MessageEvent } from "./events.ts";

/** The room everyone starts in; it is never removed. */
export const LOBBY = "lobby";

/** Letters, digits, "-" and "_", 1 to 32 of them. */
const ROOM_NAME = /^[\p{L}\p{N}_-]{1,32}$/u;

/** Whether `name` may name a room. */
export function isRoomName(name: string): boolean {
  return ROOM_NAME.test(name);
}

/** One room of the chat, whose members are of type `M`. */
export class Room<M> {
  /** The name as first written; rooms are looked up case-insensitively. */
  readonly name: string;
  readonly members: Set<M> = new Set();
  readonly #historySize: number;
  /** The kept messages: once full, a ring whose oldest message is at `#oldest`. */
  readonly #history: MessageEvent[] = [];
  #oldest = 0;
  #lastSeq = 0;

  constructor(name: string, historySize: number) {
    this.name = name;
    this.#historySize = historySize;
  }

  /** The seq of the newest message, 0 before the first. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The seq the next message gets when the room numbers it itself. */
  get nextSeq(): number {
    return this.#lastSeq + 1;
  }

  /** Keeps a message of this room, numbered above {@linkcode Room.lastSeq}, in the history. */
  append(message: MessageEvent): void {
    if (message.seq <= this.#lastSeq) {
      throw new RangeError(
        `Cannot append message ${message.seq} to ${this.name} as it is not after ${this.#lastSeq}`,
      );
    }
    this.#lastSeq = message.seq;
    if (this.#history.length < this.#historySize) this.#history.push(message);
    else if (this.#historySize > 0) {
      // Overwrite the oldest in place: shifting an array costs more than the rest of a message.
      this.#history[this.#oldest] = message;
      this.#oldest = (this.#oldest + 1) % this.#historySize;
    }
  }

  /** The kept messages, oldest first. */
  #kept(): MessageEvent[] {
    const history = this.#history;
    return [...history.slice(this.#oldest), ...history.slice(0, this.#oldest)];
  }

  /** Up to `count` of the newest messages, oldest first. */
  recent(count: number): readonly MessageEvent[] {
    return count <= 0 ? [] : this.#kept().slice(-count);
  }

  /**
   * The kept messages after `seq`, oldest first. A `seq` beyond the newest
   * comes from an older life of this room (the server restarted), so all of
   * them are new to the asker.
   */
  since(seq: number): readonly MessageEvent[] {
    const kept = this.#kept();
    return seq > this.#lastSeq ? kept : kept.filter((message) => message.seq > seq);
  }
}
