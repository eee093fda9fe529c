/**
 * Token mode: each account's private conversations, kept like a room's
 * history. The sender's instance publishes a private message to the inbox
 * log of its sender and of its target, wherever the target is; the broker
 * numbers and stores it, and the instance reading the inbox (the one where
 * its account is) shows it to the account's devices when it is delivered:
 * stored before anyone sees it, replayed on connect after the position the
 * client gives, with the gap rules of rooms.
 *
 * @module
 */

import {
  type Author,
  type Broker,
  inboxOf,
  inboxOwner,
  type LogPosition,
  type MessageNote,
  type PrivateNote,
  type PublishOutcome,
  type Settled,
} from "../broker/types.ts";
import type { Metrics } from "../metrics.ts";
import { sameName } from "../text/names.ts";
import type { SeenPosition } from "../vocabulary/arguments.ts";
import type { MessageEvent, Sink } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";
import { Room } from "./room.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

/** What {@linkcode Inboxes} works with, shared with the chatroom. */
export interface InboxesOptions {
  /** Private messages each inbox keeps; 0 keeps none, and private messages go as before. */
  readonly size: number;
  /** Only signed accounts have inboxes: an open-mode name is anyone's once it is free. */
  readonly tokenMode: boolean;
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly metrics: Metrics;
  readonly users: UserDirectory;
}

/** The inboxes this instance reads: its accounts' (every stored one, alone). */
export class Inboxes {
  readonly #options: InboxesOptions;
  /**
   * Each inbox's kept messages, by its owner's name exactly: a signed
   * account is its name, and a look-alike's is another account's inbox.
   */
  readonly #kept = new Map<string, Room<never>>();

  constructor(options: InboxesOptions) {
    this.#options = options;
  }

  /** Whether signed accounts' private messages are kept: token mode, with `pm_history_size`. */
  get enabled(): boolean {
    return this.#options.tokenMode && this.#options.size > 0;
  }

  /** Whether `user`'s private messages are kept in an inbox. */
  keeps(user: User): boolean {
    return this.enabled && user.verified;
  }

  /** Starts reading `user`'s inbox here; settles once what it keeps is delivered. */
  follow(user: User): Settled<void> {
    if (!this.keeps(user)) return undefined;
    return this.#options.broker.log.follow(inboxOf(user.name));
  }

  /** `user`'s session ended here: their inbox need not be read here any more. */
  unfollow(user: User): void {
    if (this.keeps(user)) this.#options.broker.log.unfollow(inboxOf(user.name));
  }

  /**
   * Publishes `note` to the inbox of `owner` (its sender or its target,
   * here or on another instance), said by `author`; the owner's devices see
   * it once it is stored, from the instance that reads the inbox.
   */
  publish(note: PrivateNote, owner: string, author: Author): PublishOutcome {
    const { id, sentAt, text, to } = note;
    return this.#options.broker.log.publish({
      kind: "message",
      room: inboxOf(owner),
      id,
      sentAt,
      author,
      text,
      emote: false,
      to,
    });
  }

  /**
   * A message of an inbox, delivered in the inbox's order: kept, and shown
   * to its owner's devices when the owner is here. One that is neither to
   * nor from the owner does not belong there and is dropped, counted; one
   * under a seq the inbox holds for another goes to `conflict` and is shown.
   */
  deliver(
    note: MessageNote,
    position: LogPosition | undefined,
    conflict: (inbox: Room<never>, message: MessageEvent) => void,
  ): void {
    const owner = inboxOwner(note.room)!;
    if (note.to !== owner && note.author.name !== owner) {
      this.#options.metrics.clusterMalformed.inc();
      return;
    }
    const inbox = this.#inbox(owner);
    const { epoch = inbox.epoch, seq = inbox.nextSeq } = position ?? {};
    const message = this.#options.events.message(note, inbox.name, seq, epoch);
    const kept = inbox.keep(message, epoch);
    // Delivered before (after a reconnect): not news.
    if (kept === "seen") return;
    if (kept === "conflict") conflict(inbox, message);
    const user = this.#owner(owner);
    if (user === undefined || !user.started) return;
    user.sink.send(this.#options.events.kept(message, user.name, false));
    // Seen by a live device: a session that lingers from now on resumes after it.
    if (user.lingering === undefined) user.inboxSeen = { epoch, seq };
  }

  /** Messages of the inbox `log` were dropped before this instance read them: its owner is told. */
  lost(log: string): void {
    const owner = inboxOwner(log) ?? "";
    const inbox = this.#kept.get(owner);
    const user = this.#owner(owner);
    if (inbox !== undefined && user !== undefined) {
      user.sink.send(this.#options.events.gap(inbox, "lost"));
    }
  }

  /**
   * Sends `user` (or one device of theirs, `to`) their private messages:
   * with `seen`, those after it, as news (a gap first when that cannot be
   * exact); without, every kept one, as history.
   */
  backlog(user: User, seen: SeenPosition | undefined, to: Sink = user.sink): void {
    if (!this.keeps(user)) return;
    // Nothing kept yet is an empty inbox: a position in it says what it says of any log's.
    const inbox = this.#inbox(user.name);
    const { messages, gap } = seen === undefined
      ? { messages: inbox.recent(this.#options.size), gap: undefined }
      : inbox.backlogAfter(seen.epoch, seen.seq);
    const { events } = this.#options;
    if (gap !== undefined) to.send(events.gap(inbox, gap));
    const replayed = seen === undefined;
    for (const message of messages) to.send(events.kept(message, user.name, replayed));
    user.inboxSeen = { epoch: inbox.epoch, seq: inbox.lastSeq };
  }

  /** Up to `count` of the newest kept messages between `user` and `peer`, oldest first, to `to`. */
  conversation(user: User, peer: string, count: number, to: Sink): void {
    const inbox = this.#kept.get(user.name);
    const { events } = this.#options;
    const kept = inbox?.recent(this.#options.size) ?? [];
    const named = (same: (name: string) => boolean) =>
      kept.filter((message) => same(message.from) || same(message.to ?? ""));
    // An account is its name exactly, and a look-alike's messages are another conversation; a
    // name typed loosely (`bob`) finds the conversation when no account is named so exactly.
    const exact = named((name) => name === peer);
    const between = (exact.length > 0 ? exact : named((name) => sameName(name, peer)))
      .slice(-count);
    if (between.length === 0) to.send(events.system("conversation_empty", { name: peer }));
    for (const message of between) to.send(events.kept(message, user.name, true));
  }

  /** The inbox `log` is no longer read here: what was kept of it is stale. */
  forget(log: string): void {
    this.#kept.delete(inboxOwner(log) ?? "");
  }

  /** The local user whose account is `owner`, exactly. */
  #owner(owner: string): User | undefined {
    const user = this.#options.users.find(owner);
    return user?.name === owner && user.verified ? user : undefined;
  }

  #inbox(owner: string): Room<never> {
    let inbox = this.#kept.get(owner);
    if (inbox === undefined) {
      const name = inboxOf(owner);
      const epoch = this.#options.broker.log.epochOf(name);
      inbox = new Room<never>(name, { historySize: this.#options.size, epoch });
      this.#kept.set(owner, inbox);
    }
    return inbox;
  }
}
