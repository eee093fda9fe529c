/**
 * A room: its members and its recent history, numbered per room.
 *
 * @module
 */

import { identifierProblem } from "../text/confusables.ts";
import type { GapReason, MessageEvent } from "../vocabulary/events.ts";

/** The room everyone starts in; it is never removed. */
export const LOBBY = "lobby";

/** Letters, digits, "-" and "_", 1 to 32 of them. */
const ROOM_NAME = /^[\p{L}\p{N}_-]{1,32}$/u;

/** Whether `name` may name a room: see also `identifierProblem`. */
export function isRoomName(name: string): boolean {
  return ROOM_NAME.test(name) && identifierProblem(name) === undefined;
}

/**
 * `messages` without the changes to messages among them: those show
 * changed already. A change to a message before them stays, for whoever
 * saw that message as it was.
 */
function settled(messages: MessageEvent[]): MessageEvent[] {
  if (messages.every((message) => message.change === undefined)) return messages;
  const ids = new Set(messages.map((message) => message.id));
  return messages.filter((message) =>
    message.change === undefined || !ids.has(message.change.target)
  );
}

/** The messages a client missed, and whether some may be missing from them. */
export interface Backlog {
  readonly messages: readonly MessageEvent[];
  readonly gap?: GapReason;
}

/** One room of the chat, whose members are of type `M`. */
export class Room<M> {
  /** The name as first written; rooms are looked up case-insensitively. */
  readonly name: string;
  readonly members: Set<M> = new Set();
  /** The epoch of the room's log, from its broker; it changes when the numbering may have broken. */
  epoch: string;
  readonly #historySize: number;
  /** The kept messages: once full, a ring whose oldest message is at `#oldest`. */
  readonly #history: MessageEvent[] = [];
  #oldest = 0;
  #lastSeq = 0;
  /** The seq of the newest message no longer kept (0 when none was dropped). */
  #trimmedThrough = 0;
  /** Messages whose removal this server published and has not delivered yet, by id. */
  readonly #removing = new Set<string>();

  constructor(name: string, options: { historySize: number; epoch: string }) {
    this.name = name;
    this.#historySize = options.historySize;
    this.epoch = options.epoch;
  }

  /** The seq of the newest message, 0 before the first. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The seq the next message gets when the room numbers it itself. */
  get nextSeq(): number {
    return this.#lastSeq + 1;
  }

  /**
   * Keeps a message of this room, numbered in the epoch `epoch`, in the
   * history. Returns false, keeping nothing, for a message not numbered
   * after {@linkcode Room.lastSeq}: one delivered before.
   */
  append(message: MessageEvent, epoch: string): boolean {
    if (message.seq <= this.#lastSeq) return false;
    // The first message of a log joined midway may have had others before it.
    if (this.#lastSeq === 0) this.#trimmedThrough = message.seq - 1;
    this.#lastSeq = message.seq;
    this.epoch = epoch;
    if (this.#history.length < this.#historySize) {
      this.#history.push(message);
    } else if (this.#historySize === 0) {
      this.#trimmedThrough = message.seq;
    } else {
      // Overwrite the oldest in place: shifting an array costs more than the rest of a message.
      this.#trimmedThrough = this.#history[this.#oldest].seq;
      this.#history[this.#oldest] = message;
      this.#oldest = (this.#oldest + 1) % this.#historySize;
    }
    return true;
  }

  /**
   * Keeps a delivered message (see {@linkcode Room.append}): `seen` when it
   * was delivered before, `conflict` when its seq is another message's (a
   * broken promise, for the caller to tell).
   */
  keep(message: MessageEvent, epoch: string): "kept" | "seen" | "conflict" {
    if (this.append(message, epoch)) return "kept";
    const kept = this.keptAt(message.seq);
    return kept === undefined || kept.id === message.id ? "seen" : "conflict";
  }

  /**
   * Drops the kept history, which is stale once the server stopped following
   * the room; the next message delivered starts it again.
   */
  forget(): void {
    this.#history.length = 0;
    this.#oldest = 0;
    this.#lastSeq = 0;
    this.#trimmedThrough = 0;
  }

  /** The kept messages, oldest first. */
  #kept(): MessageEvent[] {
    const history = this.#history;
    return [...history.slice(this.#oldest), ...history.slice(0, this.#oldest)];
  }

  /** The kept message (not a change to one) whose id is `id`, if it is still kept. */
  keptById(id: string): MessageEvent | undefined {
    return this.#history.find((message) => message.id === id && message.change === undefined);
  }

  /** The kept edits of the message `id`. */
  editsOf(id: string): MessageEvent[] {
    return this.#history.filter((message) =>
      message.change?.target === id && message.change.action === "edit"
    );
  }

  /** Keeps `changed` where `message` was kept (an edit or a removal of it). */
  replace(message: MessageEvent, changed: MessageEvent): void {
    const index = this.#history.indexOf(message);
    if (index >= 0) this.#history[index] = changed;
    if (changed.removed) this.#removing.delete(changed.id);
  }

  /**
   * Notes that this server publishes the removal of message `id` (or, with
   * `false`, that it could not): until it is delivered, nothing more may
   * change the message here.
   */
  removing(id: string, removing = true): void {
    if (removing) this.#removing.add(id);
    else this.#removing.delete(id);
  }

  /** Whether this server published the removal of message `id`, not yet delivered. */
  isRemoving(id: string): boolean {
    return this.#removing.has(id);
  }

  /** The kept message numbered `seq`, if it is still kept. */
  keptAt(seq: number): MessageEvent | undefined {
    const history = this.#history;
    const kept = history.length;
    // The kept messages ascend by seq from #oldest round the ring.
    let low = 0;
    let high = kept;
    while (low < high) {
      const middle = (low + high) >> 1;
      const message = history[(this.#oldest + middle) % kept];
      if (message.seq === seq) return message;
      if (message.seq < seq) low = middle + 1;
      else high = middle;
    }
    return undefined;
  }

  /**
   * When the newest kept message said after `since` (ms since the Unix
   * epoch) by someone `isAuthor` accepts was said, if there is one.
   */
  lastSaidBy(isAuthor: (name: string) => boolean, since: number): number | undefined {
    const history = this.#history;
    for (let back = 1; back <= history.length; back++) {
      // The ring's newest message is just before its oldest (or last, until it is full).
      const message = history[(this.#oldest - back + history.length) % history.length];
      if (message.sentAt <= since) return undefined;
      // An edit is said like a message; a removal is not.
      if (message.change?.action !== "delete" && isAuthor(message.from)) return message.sentAt;
    }
    return undefined;
  }

  /** Up to `count` of the newest messages, oldest first. */
  recent(count: number): readonly MessageEvent[] {
    return count <= 0 ? [] : settled(this.#kept().slice(-count));
  }

  /**
   * How many kept messages (not changes to messages) come after `seq` of
   * `epoch` (all kept ones for another epoch): a client's unread count, from
   * where it stopped reading.
   */
  unreadAfter(epoch: string | undefined, seq: number): number {
    const kept = this.#history.length;
    if (epoch !== undefined && epoch !== this.epoch) return this.#saidFrom(0);
    if (seq >= this.#lastSeq) return 0;
    // The kept messages ascend by seq from #oldest round the ring: find the first after seq.
    let low = 0;
    let high = kept;
    while (low < high) {
      const middle = (low + high) >> 1;
      const message = this.#history[(this.#oldest + middle) % kept];
      if (message.seq > seq) high = middle;
      else low = middle + 1;
    }
    return this.#saidFrom(low);
  }

  /** The kept messages that are not changes, from the `from`th kept entry on. */
  #saidFrom(from: number): number {
    const history = this.#history;
    let said = 0;
    for (let index = from; index < history.length; index++) {
      if (history[(this.#oldest + index) % history.length].change === undefined) said++;
    }
    return said;
  }

  /**
   * What a client whose last message here was `seq` (0 for none) in `epoch`
   * missed: exactly the kept messages after it when its position is in this
   * epoch and the history still reaches back to it, else every kept message
   * and why some may be missing. Without an epoch (older clients), a seq
   * beyond the newest still shows that the numbering started again.
   */
  backlogAfter(epoch: string | undefined, seq: number): Backlog {
    const kept = this.#kept();
    if (seq === 0) return { messages: settled(kept) };
    if ((epoch !== undefined && epoch !== this.epoch) || seq > this.#lastSeq) {
      return { messages: settled(kept), gap: "epoch" };
    }
    if (seq < this.#trimmedThrough) return { messages: settled(kept), gap: "trimmed" };
    return { messages: settled(kept.filter((message) => message.seq > seq)) };
  }
}
