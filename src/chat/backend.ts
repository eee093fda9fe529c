/**
 * What the rest of the server asks of the chat besides requests: the server
 * API's reads and writes (rooms, members, history, messages from bots), and
 * token mode's refusals made before a session starts.
 *
 * @module
 */

import { type Identity, rank } from "../auth/tokens.ts";
import type { BanRecord, Broker, PrivateNote } from "../broker/types.ts";
import { nameProblem } from "../text/names.ts";
import type { EventFactory } from "./event_factory.ts";
import type { MessageEvent, RoomSummary, Sink } from "../vocabulary/events.ts";
import type { Membership } from "./membership.ts";
import type { Moderation } from "./moderation.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

/** How long the server API waits for a cluster to deliver a room's history. */
const HISTORY_WAIT_MS = 5000;

/** What {@linkcode Backend} works with, shared with the chatroom. */
export interface BackendOptions {
  readonly now: () => number;
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly users: UserDirectory;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly moderation: Moderation;
  /** Keys of the reserved names: no bot may use them either. */
  readonly reserved: ReadonlySet<string>;
  /** Client text made safe to show and cut to `max_message_len`. */
  readonly clean: (text: string) => string;
  /** Hands a private message to its local target. */
  readonly deliverPrivate: (note: PrivateNote) => void;
}

/** The chat as the server API and the HTTP layer see it. */
export class Backend {
  readonly #o: BackendOptions;

  constructor(options: BackendOptions) {
    this.#o = options;
  }

  /** Token mode: tells a client that may not start a session why (the caller closes it). */
  refuse(sink: Sink, reason: string): void {
    sink.send(this.#o.events.error("unauthorized", "unauthorized", { reason }));
  }

  /**
   * Why a client may not start a session, if it may not: a ban of its name
   * or address (a moderator's token gets past a ban of their address, a
   * shared one, say), or, in token mode, a name too like a connected user's.
   */
  refusalOf(
    identity: Identity | undefined,
    address: string | undefined,
  ): { ban: BanRecord } | { alike: string } | undefined {
    const userRank = identity === undefined ? 0 : rank(identity.roles);
    const ban = this.#o.moderation.banOf(
      identity?.name,
      userRank > 0 ? undefined : address,
      userRank,
    );
    if (ban !== undefined) return { ban };
    const alike = identity === undefined ? undefined : this.#lookAlikeOf(identity);
    return alike === undefined ? undefined : { alike };
  }

  /** The name of a connected user that a token's name is a look-alike of (not the same account). */
  #lookAlikeOf(identity: Identity): string | undefined {
    const held = this.#o.users.find(identity.name)?.name ??
      this.#o.broker.findRemote(identity.name)?.name;
    return held !== undefined && held !== identity.name ? held : undefined;
  }

  /** Tells a banned client, found so after its upgrade, until when and why (the caller closes it). */
  refuseBanned(sink: Sink, ban: BanRecord): void {
    const until = new Date(ban.until).toISOString();
    sink.send(this.#o.events.error("forbidden", "banned_until", { until, reason: ban.reason }));
  }

  /** Every room in the cluster, with its members everywhere and its topic. */
  roomSummaries(): RoomSummary[] {
    return this.#o.membership.summaries().map((summary) => {
      const topic = this.#o.moderation.topicOf(summary.name);
      return topic === undefined ? summary : { ...summary, topic };
    });
  }

  /** Who is in the room called `name`, here and elsewhere; `undefined` when there is no such room. */
  membersOf(name: string): { room: string; members: string[] } | undefined {
    this.#o.membership.learnRemoteRooms();
    const room = this.#o.rooms.find(name);
    if (room === undefined) return undefined;
    const members = [...room.members].map((member) => member.name);
    for (const other of this.#o.broker.remoteMembers(room.name)) members.push(other.name);
    return { room: room.name, members };
  }

  /**
   * The kept messages of the room called `name`: the newest `limit`, or,
   * after a position (`since`, with its epoch), the oldest `limit` after it
   * (`more` when there are others) and the reason some may be missing.
   * `undefined` when there is no such room; throws when the cluster cannot
   * be read in time.
   */
  async historyOf(
    name: string,
    since: { epoch?: string; seq: number } | undefined,
    limit: number,
  ): Promise<
    | { room: string; epoch: string; gap?: string; more: boolean; messages: MessageEvent[] }
    | undefined
  > {
    this.#o.membership.learnRemoteRooms();
    const room = this.#o.rooms.find(name);
    if (room === undefined) return undefined;
    // In a cluster, a room nobody here is in is read for the while it takes.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the history of ${room.name} could not be read in time`)),
        HISTORY_WAIT_MS,
      );
    });
    try {
      await Promise.race([this.#o.broker.follow(room.name), late]);
    } finally {
      clearTimeout(timer);
      if (room.members.size === 0) this.#o.broker.unfollow(room.name);
    }
    if (since === undefined) {
      const messages = [...room.recent(limit)];
      return { room: room.name, epoch: room.epoch, more: false, messages };
    }
    const { messages, gap } = room.backlogAfter(since.epoch, since.seq);
    return {
      room: room.name,
      epoch: room.epoch,
      gap,
      more: messages.length > limit,
      messages: messages.slice(0, limit),
    };
  }

  /**
   * Says `text` in the room called `room` as `from`, a bot of the server
   * API; the room is created when new. Returns the message id, or why not.
   */
  publishAs(
    from: string,
    room: string,
    text: string,
  ):
    | { id: string }
    | "name_invalid"
    | "name_in_use"
    | "room_invalid"
    | "room_limit"
    | "unavailable" {
    const problem = this.#botProblem(from);
    if (problem !== undefined) return problem;
    // Opened with no one's creation limits: the server API is trusted.
    const opened = this.#o.membership.open(room);
    if (opened === "room_create_limit") return "room_limit";
    if (typeof opened !== "object") return opened;
    const id = this.#o.events.nextId();
    const accepted = this.#o.broker.publishRoomNote({
      kind: "message",
      room: opened.name,
      id,
      sentAt: this.#o.now(),
      author: { instance: this.#o.broker.instance, userId: 0, name: from },
      text: this.#o.clean(text),
      emote: false,
    });
    return accepted ? { id } : "unavailable";
  }

  /** Sends `text` privately to the user called `to`, from `from`, a bot of the server API. */
  sendPrivateAs(
    from: string,
    to: string,
    text: string,
  ): { id: string } | "name_invalid" | "name_in_use" | "not_found" {
    const problem = this.#botProblem(from);
    if (problem !== undefined) return problem;
    const local = this.#o.users.find(to);
    const remote = local === undefined ? this.#o.broker.findRemote(to) : undefined;
    const target = local?.name ?? remote?.name;
    if (target === undefined) return "not_found";
    const note: PrivateNote = {
      id: this.#o.events.nextId(),
      sentAt: this.#o.now(),
      from,
      to: target,
      text: this.#o.clean(text),
    };
    if (remote === undefined) this.#o.deliverPrivate(note);
    else this.#o.broker.publishPrivate(note, remote);
    return { id: note.id };
  }

  /** Why a bot may not speak as `name`: not a valid name, or a user's. */
  #botProblem(name: string): "name_invalid" | "name_in_use" | undefined {
    if (nameProblem(name, this.#o.reserved) !== undefined) return "name_invalid";
    const taken = this.#o.users.find(name) !== undefined ||
      this.#o.broker.findRemote(name) !== undefined;
    return taken ? "name_in_use" : undefined;
  }
}
