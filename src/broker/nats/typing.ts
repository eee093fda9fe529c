/**
 * Someone typing, between instances: published on the room's typing subject
 * in core NATS, outside the stream (never stored, never sent again), and
 * heard only by the instances following the room (interest-based routing,
 * as for the room's events). What is heard is shown only of a user the
 * names bucket places on the sending instance and in that room, and at most
 * about once every {@linkcode TYPING_EVERY_MS} per user, whoever sends it:
 * that keeps stale notes out and bounds what a forger can show, but proves
 * nothing of the sender (NATS permissions do, see the README).
 *
 * @module
 */

import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { nameKey } from "../../text/names.ts";
import { TYPING_EVERY_MS } from "../../vocabulary/events.ts";
import type { RemoteUser, TypingNote } from "../types.ts";
import { roomToken } from "./publisher.ts";
import { readTypingNote } from "./wire.ts";
import { DecodeError } from "../decode.ts";

/**
 * Users whose last typing note is remembered, at most, before those older
 * than {@linkcode TYPING_EVERY_MS} are forgotten.
 */
const HEARD_KEPT = 4096;

/** What a {@linkcode TypingLink} works with. */
export interface TypingLinkOptions {
  readonly nc: NatsConnection;
  readonly instance: string;
  /** The user of another instance holding exactly `name`, as the names bucket says. */
  readonly holderOf: (name: string) => (RemoteUser & { readonly userId: number }) | undefined;
  readonly deliver: (note: TypingNote) => void;
  readonly malformed: (subject: string, error: unknown) => void;
}

/** The subject of a room's typing notes. */
export function typingSubject(room: string): string {
  return `chat.typing.${roomToken(room)}`;
}

/** Typing notes of the rooms this instance follows. */
export class TypingLink {
  readonly #options: TypingLinkOptions;
  /** One subscription per followed room, by room key. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** When each other instance's user was last believed typing, by instance and user id. */
  readonly #heard = new Map<string, number>();

  constructor(options: TypingLinkOptions) {
    this.#options = options;
  }

  /** Tells the other instances following `note.room`. */
  send(note: TypingNote): void {
    const { nc } = this.#options;
    if (nc.isClosed()) return;
    nc.publish(typingSubject(note.room), JSON.stringify(note));
  }

  /** Starts hearing the typing notes of `room`. */
  follow(room: string): void {
    const key = nameKey(room);
    if (this.#subscriptions.has(key)) return;
    const subject = typingSubject(room);
    this.#subscriptions.set(
      key,
      this.#options.nc.subscribe(subject, {
        callback: (error, message) => {
          if (error !== null) return;
          // Whatever goes wrong here must not reach the client library, whose reader it would stop.
          try {
            this.#received(key, subject, message.string());
          } catch (failure) {
            this.#options.malformed(subject, failure);
          }
        },
      }),
    );
  }

  /** Stops hearing the typing notes of `room`. */
  unfollow(room: string): void {
    const key = nameKey(room);
    this.#subscriptions.get(key)?.unsubscribe();
    this.#subscriptions.delete(key);
  }

  stop(): void {
    for (const subscription of this.#subscriptions.values()) subscription.unsubscribe();
    this.#subscriptions.clear();
  }

  #received(key: string, subject: string, data: string): void {
    const { instance, holderOf, deliver, malformed } = this.#options;
    let note: TypingNote;
    try {
      note = readTypingNote(data);
      if (nameKey(note.room) !== key) throw new DecodeError("a typing note of another room");
    } catch (error) {
      return malformed(subject, error);
    }
    const { author } = note;
    if (author.instance === instance) return;
    // A user who just moved or was renamed, or a note about someone not there: not shown.
    const holder = holderOf(author.name);
    if (
      holder === undefined || holder.name !== author.name ||
      holder.instance !== author.instance || holder.userId !== author.userId ||
      nameKey(holder.room) !== key
    ) return;
    const now = Date.now();
    const who = `${author.instance}.${author.userId}`;
    // Half the sender's own bound: links delay some notes more than others.
    if (now - (this.#heard.get(who) ?? -Infinity) < TYPING_EVERY_MS / 2) return;
    // Deleted first, so that the map stays in the order heard, oldest first.
    this.#heard.delete(who);
    this.#heard.set(who, now);
    this.#forgetOld(now);
    deliver(note);
  }

  /** Forgets users not heard of for long, and the oldest beyond {@linkcode HEARD_KEPT}. */
  #forgetOld(now: number): void {
    for (const [who, at] of this.#heard) {
      if (now - at < TYPING_EVERY_MS && this.#heard.size <= HEARD_KEPT) return;
      this.#heard.delete(who);
    }
  }
}
