/**
 * A room: its members and its recent history, numbered per room.
 *
 * @module
 */

import type { MessageEvent } from "./events.ts";
import type { User } from "./user.ts";

/** The room everyone starts in; it is never removed. */
export const LOBBY = "lobby";

/** Letters, digits, "-" and "_", 1 to 32 of them. */
const ROOM_NAME = /^[\p{L}\p{N}_-]{1,32}$/u;

/** Whether `name` may name a room. */
export function isRoomName(name: string): boolean {
  return ROOM_NAME.test(name);
}

/** The fields of a message before the room numbers it. */
export type NewMessage = Omit<MessageEvent, "seq" | "type" | "room">;

/** One room of the chat. */
export class Room {
  /** The name as first written; rooms are looked up case-insensitively. */
  readonly name: string;
  readonly members: Set<User> = new Set();
  /** When the room last became empty (milliseconds), or `undefined` while in use. */
  emptySince: number | undefined;
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

  /**
   * Keeps a message in the history and returns it, numbered: with `seq` when
   * it was numbered elsewhere (it must be above {@linkcode Room.lastSeq}),
   * else with the next number.
   */
  append(message: NewMessage, seq: number = this.#lastSeq + 1): MessageEvent {
    this.#lastSeq = seq;
    const { id, sentAt, origin, body, from, text, emote } = message;
    const stored: MessageEvent = {
      type: "message",
      id,
      sentAt,
      origin,
      body,
      room: this.name,
      from,
      text,
      seq,
      emote,
    };
    if (this.#history.length < this.#historySize) this.#history.push(stored);
    else if (this.#historySize > 0) {
      // Overwrite the oldest in place: shifting an array costs more than the rest of a message.
      this.#history[this.#oldest] = stored;
      this.#oldest = (this.#oldest + 1) % this.#historySize;
    }
    return stored;
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
