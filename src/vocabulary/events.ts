/**
 * What the chat says, whatever the wire format: the typed events it sends,
 * how a session starts, and the {@linkcode Sink} a user's events go to. Each
 * format in `protocol/` turns frames into requests (see `requests.ts`) and
 * events into frames; `body` is the line the original text protocol shows,
 * rendered once from the chat config.
 *
 * @module
 */

import type { Identity } from "../auth/tokens.ts";
import type { SeenPosition } from "./arguments.ts";

/** Who an event is from, as the original text protocol names it. */
export type Origin = "SERVER" | "USER" | "SELF" | "PRIVATE" | "HISTORY";

/** Stable codes of `error` events, for clients to act on. */
export type ErrorCode =
  | "bad_request"
  | "usage"
  | "unknown_command"
  | "user_not_found"
  | "name_refused"
  | "room_invalid"
  | "room_limit"
  | "flood"
  /** The room, or the whole server, takes no more messages for the moment. */
  | "busy"
  | "binary_unsupported"
  | "unavailable"
  /** Longer than the link between the servers carries. */
  | "too_large"
  | "internal"
  /** Only moderators may do that, or not to that user. */
  | "forbidden"
  /** The user is muted. */
  | "muted"
  /** The room is in slow mode: not yet. */
  | "slow"
  /** A signed token was refused. */
  | "unauthorized"
  /** There is no such message (kept) to change. */
  | "not_found"
  /** Token mode: the account signed in on more devices than it may; the oldest is closed. */
  | "too_many_devices";

/** What every event has. */
interface EventBase {
  /** Unique per event; a message keeps its id when replayed from history. */
  readonly id: string;
  /** When it happened, in milliseconds since the Unix epoch. */
  readonly sentAt: number;
  /** Who the event is from; a message's author is sent it as `SELF` (see {@linkcode Sink.send}). */
  readonly origin: Exclude<Origin, "SELF">;
  readonly body: string;
}

/** What an entry of a room's log does to an earlier message, instead of saying something new. */
export interface MessageChange {
  /** The id of the message changed. */
  readonly target: string;
  /** `edit`: its text is now the entry's; `delete`: it is removed. */
  readonly action: "edit" | "delete";
  /** The name its author had when they said it. */
  readonly author: string;
}

/**
 * A chat message (or, with `emote`, an action) in a room; or, with
 * `change`, an entry of the room's log that edits or removes an earlier one.
 */
export interface MessageEvent extends EventBase {
  readonly type: "message" | "history";
  readonly room: string;
  readonly from: string;
  readonly text: string;
  /** Position in the room's log, within its epoch. */
  readonly seq: number;
  readonly emote: boolean;
  /** The epoch of the room's log the seq counts in: keep it with the seq, to resume. */
  readonly epoch: string;
  /** Set when this entry changes an earlier message; `from` is then who changed it. */
  readonly change?: MessageChange;
  /** A kept message edited since it was said: its text is the newest. */
  readonly edited?: boolean;
  /** A kept message removed since: its text is gone. */
  readonly removed?: boolean;
  /** Who said it, as the chat tells users apart (their instance and user id); never sent. */
  readonly saidBy?: { readonly instance: string; readonly userId: number };
  /** A private message kept in an inbox: who it is for (sent as a `private` event). */
  readonly to?: string;
}

/** The first event of a session. */
export interface WelcomeEvent extends EventBase {
  readonly type: "welcome";
  readonly name: string;
  readonly room: string;
  /** The epoch of the room's log: keep it with the seq of the last message seen, to resume. */
  readonly epoch: string;
  /** Proves who this session is when it resumes after a dropped connection. */
  readonly token: string;
  /** What the user may moderate: 1 for moderators, 2 for admins; absent for everyone else. */
  readonly rank?: number;
}

/** A private message, to its target or echoed to its sender. */
export interface PrivateEvent extends EventBase {
  readonly type: "private";
  readonly from: string;
  readonly to: string;
  readonly text: string;
  /**
   * Token mode, with `pm_history_size`: where the message is kept in the
   * account's inbox (its epoch and seq, to resume after); `origin` is
   * `HISTORY` when it is replayed.
   */
  readonly epoch?: string;
  readonly seq?: number;
}

/** Someone arrived in, left or was renamed in a room. */
export interface PresenceEvent extends EventBase {
  readonly type: "presence";
  readonly action: "join" | "leave" | "rename";
  readonly room: string;
  /** The (new) name of the user concerned. */
  readonly from: string;
  /** The epoch of the room's log now. */
  readonly epoch: string;
  /** The old name, for `rename`. */
  readonly oldName?: string;
  /** The moderator who removed the user, for a `leave` that was a kick or a ban... */
  readonly by?: string;
  /** ...and the reason given. */
  readonly reason?: string;
}

/**
 * Someone in a room is typing: clients show it for 6 seconds unless
 * sent again, and ended by their next message or their leaving. Never
 * stored, never replayed; the text protocol shows none.
 */
export interface TypingEvent extends EventBase {
  readonly type: "typing";
  readonly room: string;
  readonly from: string;
}

/** A user tells a room they are typing at most this often, in milliseconds; more often is dropped. */
export const TYPING_EVERY_MS = 2000;

/** A notice or a command's answer. */
export interface SystemEvent extends EventBase {
  readonly type: "system";
  readonly text: string;
  /** The room it is about, if any... */
  readonly room?: string;
  /** ...and the epoch of that room's log now. */
  readonly epoch?: string;
  /** Set on the notice that the user's rank changed (`op`, a refreshed sign-in): the rank now. */
  readonly rank?: number;
}

/** Something the client asked for could not be done. */
export interface ErrorEvent extends EventBase {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly text: string;
}

/** One room in a `rooms` listing. */
export interface RoomSummary {
  readonly name: string;
  readonly members: number;
  /** The seq of the room's newest message, 0 when it has none. */
  readonly lastSeq: number;
  /** The room's topic, when it has one. */
  readonly topic?: string;
  /** Kept messages after the position the client gave for this room (v2 `rooms` with `seen`). */
  readonly unread?: number;
}

/** Every room, with member counts. */
export interface RoomsEvent extends EventBase {
  readonly type: "rooms";
  readonly rooms: readonly RoomSummary[];
}

/** Who is in a room. */
export interface MembersEvent extends EventBase {
  readonly type: "members";
  readonly room: string;
  readonly members: readonly string[];
  /** The epoch of the room's log. */
  readonly epoch: string;
}

/** Why a backlog may not hold everything a client missed. */
export type GapReason =
  /** The client's position is from another epoch of the room's log: it started again. */
  | "epoch"
  /** Messages after the client's position are no longer kept. */
  | "trimmed"
  /**
   * Live, in a cluster: messages said in the room were dropped by NATS (it
   * keeps `kept_per_room` per room) before this server could read them.
   */
  | "lost";

/** Said before a backlog that may not hold everything the client missed. */
export interface GapEvent extends EventBase {
  readonly type: "gap";
  readonly room: string;
  /** The epoch of the room's log now. */
  readonly epoch: string;
  readonly reason: GapReason;
}

/** One command as `help` describes it. */
export interface CommandSummary {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
}

/** The commands (all, or the one asked about), for people and for clients' hints. */
export interface HelpEvent extends EventBase {
  readonly type: "help";
  readonly commands: readonly CommandSummary[];
}

/** Any event the server sends. */
export type ChatEvent =
  | MessageEvent
  | WelcomeEvent
  | PrivateEvent
  | PresenceEvent
  | SystemEvent
  | ErrorEvent
  | RoomsEvent
  | MembersEvent
  | HelpEvent
  | GapEvent
  | TypingEvent;

/** Why the chat ends a session; the connection picks the close code. */
export type CloseReason =
  /** The server is stopping. */
  | "shutdown"
  /** The client kept flooding. */
  | "flood"
  /** The session cannot start now, but may shortly: the client should try again. */
  | "retry"
  /** Token mode: the oldest device of an account signed in on more than it may be. */
  | "too_many_devices"
  /** The session was resumed on another connection. */
  | "replaced"
  /** The user's signed token expired, or was refused. */
  | "unauthorized"
  /** A moderator removed the user (a kick or a ban). */
  | "removed";

/** Where a user's events go; the connection behind it never throws. */
export interface Sink {
  /**
   * Sends an event. `own` marks the author's copy of their own message: the
   * same event object everyone else gets, shown to its author as theirs.
   */
  send(event: ChatEvent, own?: boolean): void;
  /**
   * Closes the connection once the events sent before have gone out (the chat
   * counts on a goodbye arriving before the close); later sends are dropped.
   */
  close(reason: CloseReason): void;
}

/**
 * A place in the server's limits (connections in all and per address):
 * taken by a socket at its upgrade, kept by its session while it lingers
 * after the socket dropped, released once.
 */
export interface Place {
  /**
   * Whether, counting lingering sessions, the place's address (or the whole
   * server) is over its limit: a new session then ends the oldest lingering
   * one there, so dropped sessions never hold more than the limit.
   */
  crowded(): "address" | "server" | undefined;
  /** Gives the place back. */
  release(): void;
  /** The socket closed and its session lingers: the place passes to it, counted as lingering. */
  linger(): Place;
}

/** How a session begins: a fresh start, or picking up one that lost its connection. */
export interface SessionStart {
  /** The name asked for; a generated one is used when it is invalid or taken. */
  readonly name?: string;
  /** The token of the session to pick up, from its `welcome`. */
  readonly token?: string;
  /** The room to enter (default: the lobby)... */
  readonly room?: string;
  /** ...and the position of the last message seen there: the log's epoch and the seq. */
  readonly epoch?: string;
  readonly lastSeq?: number;
  /** Token mode: the position of the last private message seen, in the account's inbox. */
  readonly privates?: SeenPosition;
  /** Whether the client can resume: its session then lingers when the connection drops. */
  readonly resumable?: boolean;
  /** Whether the client asked to go on where it was (a v2 `resume`), rather than to begin. */
  readonly resuming?: boolean;
  /** The client's address: flood control and room creation are also counted per address. */
  readonly address?: string;
  /** Token mode: who the client's signed token says it is; the name is then that. */
  readonly identity?: Identity;
  /** The place of the socket starting the session, in the server's limits. */
  readonly place?: Place;
}
