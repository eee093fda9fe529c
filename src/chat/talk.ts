/**
 * Saying something: to a room (`say`, `me`) or to one user (`pm`), by a user
 * or by a bot of the server API, under the same rules: text cleaned and cut
 * once, mutes and slow mode for users, the target found as names are, and
 * what a room and the whole server accept per second, whoever sends it (so
 * many addresses together cannot flood a room or the server either). And
 * taking it back (`edit`, `delete`: entries of the room's log like messages,
 * so every instance and every history converges), and telling a room that
 * one is about to say something (`typing`).
 *
 * @module
 */

import { rank } from "../auth/tokens.ts";
import type {
  Author,
  Broker,
  PrivateNote,
  PublishOutcome,
  Sent,
  Settled,
} from "../broker/types.ts";
import type { ChatConfig } from "../config/mod.ts";
import type { MessageKey, MessageValues } from "../messages.ts";
import type { Metrics } from "../metrics.ts";
import { Buckets, Limiter } from "../limits.ts";
import { looksLike, nameKey } from "../text/names.ts";
import { formatDuration } from "../text/duration.ts";
import { cleanText, stripWhitespace, trimMarks, truncateText } from "../text/sanitize.ts";
import { type ErrorCode, TYPING_EVERY_MS } from "../vocabulary/events.ts";
import type { RequestOf } from "../vocabulary/requests.ts";
import { usageOf } from "../vocabulary/commands.ts";
import type { EventFactory } from "./event_factory.ts";
import type { Gate } from "./gate.ts";
import type { Inboxes } from "./inboxes.ts";
import type { Membership } from "./membership.ts";
import type { Moderation } from "./moderation.ts";
import type { Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import { type Actor, DONE, type Outcome } from "./outcome.ts";
import type { User } from "./user.ts";
import type { MessageEvent } from "../vocabulary/events.ts";

/**
 * Takes one from `rate` (a room's or a person's, when there is one) and one
 * from `server`, or neither: then says which had none left.
 */
function admit(
  rate: Limiter | undefined,
  server: Limiter,
  at: number,
): "rate" | "server" | undefined {
  if (rate !== undefined && !rate.available(at)) return "rate";
  if (!server.take(at)) return "server";
  rate?.take(at);
  return undefined;
}

/** Whether `message` was said by `author` (their session, on their instance). */
function saidBy(message: MessageEvent, author: Author): boolean {
  const said = message.saidBy;
  return said !== undefined && said.instance === author.instance && said.userId === author.userId;
}

/** A kept message that may be changed, and its room. */
interface Changeable {
  readonly room: Room<User>;
  readonly message: MessageEvent;
}

/** What {@linkcode Talk} works with, shared with the chatroom. */
export interface TalkOptions {
  readonly config: ChatConfig;
  readonly now: () => number;
  readonly metrics: Metrics;
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly moderation: Moderation;
  readonly gate: Gate;
  /** Token mode: the accounts' private conversations. */
  readonly inboxes: Inboxes;
}

/** Messages to rooms and to users. */
export class Talk {
  readonly #options: TalkOptions;
  /** Messages each room, and each person privately, has left to accept, by key... */
  readonly #rooms: Buckets<Limiter>;
  /** ...and the whole server. */
  readonly #server: Limiter;
  /**
   * Typing notices each room and the whole server pass on, at the same
   * rates but counted apart: typing never takes a message's place.
   */
  readonly #typingRooms: Buckets<Limiter>;
  readonly #typingServer: Limiter;

  constructor(options: TalkOptions) {
    this.#options = options;
    const { roomRate, roomBurst, serverRate, serverBurst } = options.config.flood;
    const room = (now: number) => new Limiter({ rate: roomRate, burst: roomBurst }, now);
    this.#rooms = new Buckets(room);
    this.#typingRooms = new Buckets(room);
    this.#server = new Limiter({ rate: serverRate, burst: serverBurst }, options.now());
    this.#typingServer = new Limiter({ rate: serverRate, burst: serverBurst }, options.now());
  }

  /** Forgets the rates of rooms quiet long enough. */
  sweep(): void {
    this.#rooms.sweep(this.#options.now());
    this.#typingRooms.sweep(this.#options.now());
  }

  /**
   * Client text made safe to show and cut to `max_message_len`; cut first
   * to four times that, so that cleaning costs no more than a message is
   * worth (what cleaning takes out is rarely more than the rest).
   */
  clean(text: string): string {
    const max = this.#options.config.maxMessageLen;
    return truncateText(cleanText(truncateText(text, 4 * max)), max);
  }

  say(actor: Actor, request: RequestOf<"say"> | RequestOf<"me">): Outcome {
    const text = trimMarks(this.clean(request.text));
    if (text.trim() === "") {
      this.#options.metrics.messagesDropped.inc("empty");
      // A blank line is dropped without a word; a blank action is a mistake worth telling.
      return { ...this.#usage(request.type), quiet: request.type === "say" };
    }
    const user = actor.user;
    if (user !== undefined) {
      const refusal = this.#mayNotSpeak(user);
      if (refusal !== undefined) return refusal;
    }
    const busy = this.#busy({ room: actor.room });
    if (busy !== undefined) return busy;
    const { broker, events, now } = this.#options;
    const id = events.nextId();
    const outcome = broker.log.publish({
      kind: "message",
      room: actor.room,
      id,
      sentAt: now(),
      author: this.#authorOf(actor),
      text,
      emote: request.type === "me",
    });
    return this.#notSent(outcome) ?? { ok: true, id };
  }

  pm(actor: Actor, request: RequestOf<"pm">): Outcome {
    const name = stripWhitespace(this.clean(request.to));
    const text = trimMarks(this.clean(request.text));
    if (name === "" || text.trim() === "") return this.#usage("pm");
    const { broker, events, gate, inboxes, moderation, now } = this.#options;
    const muted = actor.user === undefined ? undefined : moderation.mutedFor(actor.user);
    if (muted !== undefined) {
      return this.#fail("muted", "still_muted", { duration: formatDuration(muted) });
    }
    const { local, remote } = gate.holderOf(name) ?? {};
    const to = local?.name ?? remote?.name;
    if (to === undefined) {
      // The original protocol's words for it, to users; plainer ones to the server API.
      return actor.user === undefined
        ? this.#fail("user_not_found", "no_such_user", { name })
        : this.#fail("user_not_found", "user_not_found", { name });
    }
    // Counted once it would go out: a message to nobody costs the server's rate nothing.
    // Moderators and the server API are not held by a person's rate, which a crowd can spend.
    const busy = this.#busy(actor.rank > 0 ? undefined : { user: to });
    if (busy !== undefined) return busy;
    const note: PrivateNote = { id: events.nextId(), sentAt: now(), from: actor.name, to, text };
    const author = this.#authorOf(actor);
    let refusal: Outcome | undefined;
    // A signed account's copy is stored in its inbox first, wherever the account is, and shown
    // from there by the instance that holds it: nothing rides on that instance being reachable.
    if (local === undefined ? inboxes.enabled : inboxes.keeps(local)) {
      refusal = this.#notSent(inboxes.publish(note, to, author));
    } else if (remote !== undefined) {
      refusal = this.#notSent(broker.cluster?.mail.sendPrivate(note, remote));
    } else local?.sink.send(events.private(note, "received"));
    if (refusal !== undefined) return refusal;
    const sender = actor.user;
    // The sender's own copy, for all their devices; one to yourself is kept once.
    if (sender !== undefined && !(sender === local && inboxes.keeps(sender))) {
      // Stored, the copy is a message of the sender's inbox, with an id of its own.
      const keeps = inboxes.keeps(sender);
      const stored = keeps &&
        inboxes.publish({ ...note, id: events.nextId() }, sender.name, author) === "queued";
      // Not storable now (the outbox just filled): shown all the same, and counted.
      if (keeps && !stored) this.#options.metrics.historyUnsaved.inc();
      if (!stored) sender.sink.send(events.private(note, "sent"));
    }
    return { ok: true, id: note.id };
  }

  /** Who says what `actor` says: a session, or a bot of the server API (user 0). */
  #authorOf(actor: Actor): Author {
    const { broker, membership } = this.#options;
    return actor.user === undefined
      ? { instance: broker.instance, userId: 0, name: actor.name }
      : membership.author(actor.user);
  }

  /**
   * What the sender is told when what they said could not go out (published
   * to a log, or sent straight to another instance), or `undefined` when it did.
   */
  #notSent(outcome: PublishOutcome | Sent | undefined): Outcome | undefined {
    if (outcome === "too_large") return this.#fail("too_large", "too_long", {});
    if (outcome === "busy" || outcome === "unavailable") {
      return this.#fail("unavailable", "not_sent", {});
    }
    return undefined;
  }

  /**
   * Edits one of the actor's own messages of their room, within
   * `edit_window`: an edit is said like a message, so mutes and slow mode
   * hold it back and it counts in the room's and the server's rates.
   */
  edit(actor: Actor, request: RequestOf<"edit">): Outcome {
    const text = trimMarks(this.clean(request.text));
    if (text.trim() === "") {
      return this.#fail("bad_request", "bad_request", { reason: "the message is empty" });
    }
    const found = this.#changeable(actor, request.id, undefined, "edit");
    if ("error" in found) return found;
    const refusal = actor.user === undefined ? undefined : this.#mayNotSpeak(actor.user);
    return refusal ?? this.#busy({ room: found.room.name }) ??
      this.#change(actor, found, "edit", text);
  }

  /**
   * Removes a message: the actor's own within `edit_window`, anyone's for
   * moderators (but a moderator's or an admin's only for a higher rank).
   * The server API may name a room nobody here is in: it is read first, as
   * its history would be.
   */
  delete(actor: Actor, request: RequestOf<"delete">): Settled<Outcome> {
    const now = () => {
      const found = this.#changeable(actor, request.id, request.room, "delete");
      return "error" in found ? found : this.#change(actor, found, "delete", "");
    };
    if (actor.user !== undefined) return now();
    return this.#options.membership.whileRead(request.room ?? actor.room, now).then(
      (outcome) => outcome ?? now(),
      () => this.#fail("unavailable", "not_sent", {}),
    );
  }

  /**
   * Removes, for a moderator, the newest `count` messages said under
   * `name` that the rooms kept here hold (in a cluster, the rooms this
   * instance follows); returns how many.
   */
  removeLast(actor: Actor, name: string, count: number): number {
    const said: Changeable[] = [];
    for (const room of this.#options.rooms.all()) {
      for (const message of room.recent(Number.MAX_SAFE_INTEGER)) {
        // A name and its look-alikes are one name, as for the ban itself.
        if (
          message.change === undefined && !message.removed && !room.isRemoving(message.id) &&
          looksLike(message.from, name)
        ) said.push({ room, message });
      }
    }
    const newest = said.sort((a, b) => b.message.sentAt - a.message.sentAt).slice(0, count);
    return newest.filter((found) => this.#change(actor, found, "delete", "").ok).length;
  }

  /**
   * The kept message `id` of `room` (the actor's own room by default), when
   * the actor may change it that way: its author within `edit_window`
   * (known by their session on the instance they said it on, or in token
   * mode by their account), or a moderator removing it. Else why not.
   */
  #changeable(
    actor: Actor,
    id: string,
    roomName: string | undefined,
    action: "edit" | "delete",
  ): Changeable | (Outcome & { ok: false }) {
    const { config, gate, membership, now, rooms } = this.#options;
    const name = roomName ?? actor.room;
    const room = rooms.find(name);
    const message = room?.keptById(id);
    if (room === undefined || message === undefined || message.removed || room.isRemoving(id)) {
      return this.#fail("not_found", "message_not_found", { id, room: room?.name ?? name });
    }
    const user = actor.user;
    const own = user !== undefined && (saidBy(message, membership.author(user)) ||
      (user.verified && nameKey(message.from) === nameKey(user.name)));
    if (own && now() - message.sentAt <= config.editWindow * 1000) return { room, message };
    if (action === "delete" && actor.rank > 0) {
      const { local, remote } = gate.holderOf(message.from) ?? {};
      const authorRank = local === undefined ? remote?.rank ?? 0 : rank(local.roles);
      if (own || authorRank < actor.rank) return { room, message };
    }
    return this.#fail("forbidden", "message_not_yours", {
      minutes: String(Math.floor(config.editWindow / 60)),
    });
  }

  /** Publishes the change of `message`, an entry of the room's log like a message. */
  #change(
    actor: Actor,
    { room, message }: Changeable,
    action: "edit" | "delete",
    text: string,
  ): Outcome {
    const { broker, events, now } = this.#options;
    const id = events.nextId();
    // Noted first: alone, the removal is delivered (and the note cleared) before publish returns.
    if (action === "delete") room.removing(message.id);
    const outcome = broker.log.publish({
      kind: "message",
      room: room.name,
      id,
      sentAt: now(),
      author: this.#authorOf(actor),
      text,
      emote: message.emote,
      change: { target: message.id, action, author: message.from },
    });
    const refusal = this.#notSent(outcome);
    if (refusal !== undefined) {
      room.removing(message.id, false);
      return refusal;
    }
    // Users see the change itself; the server API is told in words.
    return actor.user === undefined
      ? { ok: true, id, done: `message ${message.id} of ${message.from} removed` }
      : { ok: true, id };
  }

  /**
   * Shows the other members of the user's room, on every instance, that the
   * user is typing: once every {@linkcode TYPING_EVERY_MS} per room at most,
   * and within what the room and the server pass on per second (more is
   * dropped without a word, as is a muted user's). Never stored; clients
   * show it for a few seconds.
   */
  typing(user: User): Outcome {
    const { broker, membership, moderation, now } = this.#options;
    const at = now();
    const room = user.room.name;
    const key = nameKey(room);
    const last = user.typing;
    if (last !== undefined && last.room === key && at - last.at < TYPING_EVERY_MS) return DONE;
    if (moderation.mutedFor(user) !== undefined) return DONE;
    if (admit(this.#typingRooms.get(key, at), this.#typingServer, at) !== undefined) return DONE;
    user.typing = { room: key, at };
    broker.typing({ room, sentAt: at, author: membership.author(user) });
    return DONE;
  }

  /** Why `user` may not speak now: muted, or too soon in a slow room. */
  #mayNotSpeak(user: User): Outcome | undefined {
    const { moderation } = this.#options;
    const muted = moderation.mutedFor(user);
    if (muted !== undefined) {
      return this.#fail("muted", "still_muted", { duration: formatDuration(muted) });
    }
    const wait = moderation.settings.slowWait(user);
    if (wait === undefined) return undefined;
    return this.#fail("slow", "slow_wait", { room: user.room.name, seconds: String(wait) });
  }

  /**
   * Why a message to `to` (a room, or a person privately) may not be
   * accepted now: it, or the server, took all it takes for the moment (a
   * person takes private messages at a room's rate, so a crowd cannot bury
   * one user either). A refusal takes nothing from either.
   */
  #busy(to?: { room: string } | { user: string }): Outcome | undefined {
    const { metrics, now } = this.#options;
    const at = now();
    const [kind, target] = to === undefined
      ? []
      : "room" in to
      ? ["room", to.room]
      : ["user", to.user];
    const rate = target === undefined
      ? undefined
      : this.#rooms.get(`${kind}:${nameKey(target)}`, at);
    switch (admit(rate, this.#server, at)) {
      case "rate":
        metrics.messagesDropped.inc("room_rate");
        return this.#fail("busy", "room_busy", { room: target ?? "" });
      case "server":
        metrics.messagesDropped.inc("server_rate");
        return this.#fail("busy", "server_busy", {});
    }
    return undefined;
  }

  #usage(type: "say" | "me" | "pm"): Outcome & { ok: false } {
    const { events } = this.#options;
    const error = type === "say"
      ? events.error("bad_request", "bad_request", { reason: "the message is empty" })
      : events.error("usage", "usage", { usage: usageOf(type) });
    return { ok: false, error };
  }

  #fail<K extends MessageKey>(
    code: ErrorCode,
    key: K,
    values: MessageValues<K>,
  ): Outcome & { ok: false } {
    return { ok: false, error: this.#options.events.error(code, key, values) };
  }
}
