/**
 * What travels between instances of the chat. The chatroom hands every room
 * event and private message to a {@linkcode Broker} and acts on what it
 * delivers back, so one process alone (the local broker) and several joined
 * through NATS run the same code. The broker owns each room's log: it numbers
 * messages, keeps its epoch and stores it before it delivers. Plain JSON data.
 *
 * @module
 */

import { nameKey } from "../text/names.ts";
import type { SeenPosition } from "../vocabulary/arguments.ts";
import type { MessageChange } from "../vocabulary/events.ts";

/** Who did something: the instance, the user's id there, and the name they had. */
export interface Author {
  readonly instance: string;
  readonly userId: number;
  readonly name: string;
}

/**
 * Something said in a room; or, with `change`, an edit or a removal of an
 * earlier message (`author` is then who changed it, and `text` the new text
 * of an edit): numbered, stored and delivered in the room's log like a message.
 * With `to`, a private message kept in the log of an account's conversations
 * (its `room` is then {@linkcode inboxOf} the sender or of `to`).
 */
export interface MessageNote {
  readonly kind: "message";
  readonly room: string;
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly sentAt: number;
  readonly author: Author;
  readonly text: string;
  readonly emote: boolean;
  readonly change?: MessageChange;
  /** A private message: the account it is for. */
  readonly to?: string;
}

/** What an inbox's name starts with: no room's name can (see `isRoomName`). */
const INBOX_PREFIX = "@";

/**
 * The log an account's private conversations are kept in, numbered and
 * stored like a room's (token mode, with `pm_history_size`).
 */
export function inboxOf(account: string): string {
  return INBOX_PREFIX + account;
}

/** The account whose inbox `log` is, or `undefined` for a room's log. */
export function inboxOwner(log: string): string | undefined {
  return log.startsWith(INBOX_PREFIX) ? log.slice(INBOX_PREFIX.length) : undefined;
}

/**
 * The key a log is filed and published under: a room's compares as names
 * do (`Games` is `games`); an inbox's is its name exactly, since a signed
 * account is its name exactly and a look-alike account is another one.
 */
export function logKey(log: string): string {
  return log.startsWith(INBOX_PREFIX) ? log : nameKey(log);
}

/** Which notice a presence note shows. */
export type PresenceNotice =
  /** A session starting or ending. */
  | "connected"
  | "disconnected"
  /** A move between rooms. */
  | "joined"
  | "left"
  | "renamed"
  /** A moderator removed the user (`by`, with `reason`). */
  | "kicked"
  | "banned";

/** Someone arrived in, left or was renamed in a room. */
export interface PresenceNote {
  readonly kind: "presence";
  readonly room: string;
  readonly id: string;
  readonly sentAt: number;
  /** The user concerned, with their (new) name. */
  readonly author: Author;
  readonly action: "join" | "leave" | "rename";
  readonly notice: PresenceNotice;
  readonly oldName?: string;
  /** Who removed the user, for `kicked` and `banned`... */
  readonly by?: string;
  /** ...and why. */
  readonly reason?: string;
}

/** Someone is typing in a room: shown to its members for a moment, never stored. */
export interface TypingNote {
  readonly room: string;
  readonly sentAt: number;
  readonly author: Author;
}

/** A room event, delivered to every instance in one order per room. */
export type RoomNote = MessageNote | PresenceNote;

/**
 * Where a message stands in its room's log. Within one epoch, seqs only
 * grow and every message numbered is kept (until the oldest fall out of the
 * history); a new epoch means the numbering started again or the log may
 * have lost messages, so a client's position from another epoch says nothing.
 */
export interface LogPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** A private message on its way to the instance of its target. */
export interface PrivateNote {
  readonly id: string;
  readonly sentAt: number;
  readonly from: string;
  readonly to: string;
  readonly text: string;
}

/** A user connected to another instance. */
export interface RemoteUser {
  readonly name: string;
  readonly room: string;
  readonly instance: string;
  /** What the user may moderate: 0 for users, 1 for moderators, 2 for admins. */
  readonly rank: number;
}

/** A result that is ready now (alone) or later (when other instances must agree). */
export type Settled<T> = T | Promise<T>;

/** What the instance handing a session over tells the one picking it up. */
export interface Handover {
  /** The room the session was in. */
  readonly room: string;
  /** Private messages kept for it while it lingered, oldest first. */
  readonly privates: readonly PrivateNote[];
  /** Where its devices said they stopped reading each room, by room name. */
  readonly read?: ReadonlyMap<string, SeenPosition>;
}

/**
 * A ban or a mute: until `until` (milliseconds since the Unix epoch), a
 * banned name or address may not connect, a muted one may read but not
 * speak. In open mode, a name's user's address is held with it, in a
 * record of its own.
 */
export interface HoldRecord<K extends "ban" | "mute"> {
  readonly kind: K;
  /** The held name as written, or `undefined` for an address. */
  readonly name?: string;
  /** The held address or network, in its one spelling (`10.0.0.0/8`, `2001:db8::/64`). */
  readonly address?: string;
  /**
   * For an address held because its user's name was (open mode): that
   * name's key, so that lifting the name lifts the address too.
   */
  readonly for?: string;
  readonly until: number;
  readonly reason: string;
  /** The moderator's name (or `api`). */
  readonly by: string;
  /** The moderator's rank: nobody of that rank or higher is held by it. */
  readonly byRank: number;
  /** When it was decided. */
  readonly at: number;
}

export type BanRecord = HoldRecord<"ban">;
export type MuteRecord = HoldRecord<"mute">;

/** A room's settings: its topic, and slow mode (seconds between one user's messages, 0 off). */
export interface RoomRecord {
  readonly kind: "room";
  readonly room: string;
  readonly topic: string;
  readonly slow: number;
  readonly by: string;
  readonly at: number;
}

/** What moderators decide, kept and shared by every instance. */
export type ModerationRecord = BanRecord | MuteRecord | RoomRecord;

/**
 * Where a record is kept: one per held name, held address (and address held
 * with a name), and room.
 */
export function recordKey(record: ModerationRecord): string {
  switch (record.kind) {
    case "ban":
    case "mute": {
      if (record.name !== undefined) {
        return record.kind === "ban"
          ? `ban:name:${nameKey(record.name)}`
          : `mute:${nameKey(record.name)}`;
      }
      // An address held with a name has a key of its own: it never replaces a hold of the address.
      const linked = record.for === undefined ? "" : `:for:${record.for}`;
      return `${record.kind}:address:${record.address}${linked}`;
    }
    case "room":
      return `room:${nameKey(record.room)}`;
  }
}

/** What came of a kick sent to another instance. */
export type KickResult = "done" | "outranked" | "not_found" | "unavailable";

/** A moderator removes a user of another instance. */
export interface KickNote {
  /** The user to remove. */
  readonly name: string;
  readonly by: string;
  readonly byRank: number;
  readonly reason: string;
  /** `banned` when a ban goes with it. */
  readonly notice: "kicked" | "banned";
}

/** What the chatroom does with what the broker delivers. */
export interface BrokerHandler {
  /** A room event; a message comes with its place in the room's log. */
  deliverRoomNote(note: RoomNote, position?: LogPosition): void;
  /** A private message for a local user. */
  deliverPrivate(note: PrivateNote): void;
  /** Someone is typing in a room this instance follows (a local user included). */
  deliverTyping(note: TypingNote): void;
  /** A local user's name turned out to be held elsewhere. */
  nameLost(name: string): void;
  /** A local user's name could not be renewed in time: the session ends, its goodbye said. */
  nameLapsed(name: string): void;
  /** The link to the other instances was lost (`true`) or is back (`false`). */
  setDegraded(degraded: boolean): void;
  /** Messages said in `room` were dropped by the cluster before this instance could read them. */
  messagesLost(room: string): void;
  /** Room history stopped being saved (`false`), or is saved again (`true`). */
  setHistorySaved(saved: boolean): void;
  /**
   * Another instance resumes the local session holding `name` with `token`
   * (or with a signed token naming the user, `verified`): if that proves
   * the session, end it here silently and say where it was.
   */
  handOver(name: string, token: string, verified: boolean): Handover | undefined;
  /** This instance stopped following `room`: what it kept of its history is stale. */
  forgetHistory(room: string): void;
  /** A moderation record was saved (`record`) or removed (`undefined`), here or elsewhere. */
  recordChanged(key: string, record: ModerationRecord | undefined): void;
  /** A moderator of another instance removes a local user; says what came of it. */
  deliverKick(note: KickNote): KickResult;
  /** The rank of the local user holding `name` now, or `undefined` when there is none. */
  rankOf(name: string): number | undefined;
}

/**
 * What came of publishing a room event: `queued`; `busy` when it cannot even
 * be queued (the cluster is away and the queue is full); `too_large` when
 * the cluster's messaging engine takes nothing that large.
 */
export type PublishOutcome = "queued" | "busy" | "too_large";

/**
 * Every room's log: the broker numbers each room's messages, keeps the
 * log's epoch, stores the log before it delivers, and delivers it.
 */
export interface RoomLog {
  /** The epoch of a room's log, started now when the room has none yet. */
  epochOf(room: string): string;
  /**
   * Sends a room event to every instance, this one included. Messages are
   * numbered and stored first. Says whether it was queued, or why not.
   */
  publish(note: RoomNote): PublishOutcome;
  /** Starts delivering `room`'s events here; settles once its kept history is delivered. */
  follow(room: string): Settled<void>;
  /** No local user is in `room` any more: its events need not come here. */
  unfollow(room: string): void;
  /**
   * Forgets a room's log after the room was removed here; a room of that
   * name later starts a new one. It was quiet here since `quietSince`
   * (milliseconds since the Unix epoch): a log shared with other instances
   * is kept when it was not quiet there.
   */
  removed(room: string, quietSince: number): void;
}

/** Bans, mutes and room settings, kept where every instance sees them and a restart keeps them. */
export interface Records {
  /**
   * Saves a record (or removes it, with `undefined`); settles true once it
   * is kept, false when it could not be. Every instance's handler then hears of it.
   */
  save(key: string, record: ModerationRecord | undefined): Settled<boolean>;
  /** Removes a record that ran out, unless it was replaced since (its `at` differs). */
  removeExpired(key: string, at: number): Settled<void>;
  /** The records known here, by key. */
  all(): ReadonlyMap<string, ModerationRecord>;
}

/** Who holds which name on the other instances; a name is used only once it is claimed. */
export interface NameDirectory {
  /** The user of another instance holding `name` or a look-alike of it, if any. */
  find(name: string): RemoteUser | undefined;
  /** Every user of the other instances. */
  users(): Iterable<RemoteUser>;
  /** The users of the other instances who are in `room`. */
  members(room: string): Iterable<RemoteUser>;
  /** Takes `name` for a local user, cluster-wide; false when someone else holds it. */
  claim(name: string, holder: LocalHolder): Promise<boolean>;
  /** Records where a local user holding `name` is now, and their rank. */
  announce(name: string, holder: LocalHolder): void;
  /** Gives up a name a local user held. */
  withdraw(name: string): void;
  /**
   * Picks up the session of another instance's user holding `name`, if
   * `token` is theirs (or `verified`: a signed token named the user); the
   * name is then this instance's.
   */
  takeOver(
    name: string,
    token: string,
    holder: LocalHolder,
    verified: boolean,
  ): Promise<Handover | undefined>;
}

/** A local user as the other instances see them. */
export interface LocalHolder {
  readonly userId: number;
  readonly room: string;
  readonly rank: number;
}

/** What came of sending something straight to another instance. */
export type Sent = "sent" | "unavailable" | "too_large";

/** What goes straight to the instance of one user. */
export interface Mail {
  /** A private message for a user of that instance, or why it cannot go. */
  sendPrivate(note: PrivateNote, to: RemoteUser): Sent;
  /** Asks that instance to remove the user; it checks ranks, and says what came of it. */
  kick(note: KickNote, to: RemoteUser): Promise<KickResult>;
  /**
   * Asks that instance for the user's rank now (which may have changed since
   * the names bucket heard of it); `undefined` when the user is not there,
   * the entry's rank when the instance does not answer.
   */
  rankOf(to: RemoteUser): Promise<number | undefined>;
}

/**
 * What the instance of a device tells the instance holding its account's
 * session, asking it to take the device: the socket's part of a connection.
 */
export interface DeviceOpening {
  /** The account, exactly as signed. */
  readonly name: string;
  readonly protocol: "v1" | "v2";
  /** The client's address. */
  readonly address?: string;
  /** The upgrade's `?room=`, cut to {@linkcode MAX_OPENING_ROOM} (a longer one names no room). */
  readonly room?: string;
  /** The upgrade's `?token=`, checked again there; otherwise the first frame holds it. */
  readonly token?: string;
}

/** UTF-16 units of an opening's `room`, at most: any room's name is far shorter. */
export const MAX_OPENING_ROOM = 1024;

/** One end of a relayed device: what the other end sends arrives here. */
export interface DeviceEnd {
  /** A frame from the other end (a binary one as an empty buffer: its bytes are never read). */
  frame(data: string | ArrayBuffer): void;
  /** The other end closed with `code`, or the link was lost. */
  ended(code: number, reason: string): void;
}

/** The way to the other end of a relayed device. */
export interface DeviceLink {
  send(data: string | ArrayBuffer): void;
  close(code: number, reason: string): void;
}

/** Devices of one account on different instances, each relayed to the session's. */
export interface Relay {
  /**
   * The device's side: asks `instance` to take a device of the account
   * `opening.name`. The link once it has; `not_live` when the session is
   * not live there (the device may start its own); `unavailable` when it
   * did not answer or could not take it (the device should try again).
   */
  open(
    instance: string,
    opening: DeviceOpening,
    end: DeviceEnd,
  ): Promise<DeviceLink | "not_live" | "unavailable">;
  /**
   * The session's side: how a device is taken (its end), refused as not
   * live (`undefined`), or refused for another reason (a throw).
   */
  serve(take: (opening: DeviceOpening, link: DeviceLink) => Settled<DeviceEnd | undefined>): void;
}

/** The other instances, in a cluster. */
export interface Cluster {
  readonly names: NameDirectory;
  readonly mail: Mail;
  readonly relay: Relay;
}

/** The link between the chatroom and the rooms' logs, the records and the other instances. */
export interface Broker {
  /** This instance's id, different at every start, so event ids never repeat. */
  readonly instance: string;
  /** Whether the link to the other instances works (always, alone). */
  readonly healthy: boolean;
  readonly log: RoomLog;
  readonly records: Records;
  /** The other instances; absent when the server runs alone. */
  readonly cluster?: Cluster;
  /**
   * Shows that someone is typing to the room's members, here and on every
   * instance following the room: never stored, never sent again.
   */
  typing(note: TypingNote): void;
  /** Sets who receives deliveries; called once by the chatroom. */
  attach(handler: BrokerHandler): void;
  /** Starts delivering: stored history and records alone, the cluster's feeds in a cluster. */
  start(): Promise<void>;
  /** Stops once what was published is stored, releasing what this instance holds. */
  close(): Promise<void>;
}

/** A new random id of 8 hex digits, for instances and epochs. */
export function randomId(): string {
  return crypto.randomUUID().slice(0, 8);
}
