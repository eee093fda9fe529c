/**
 * Builds every event the chat sends: ids, times and the rendered text lines
 * come from one place.
 *
 * @module
 */

import type { MessageNote, PresenceNote, PrivateNote, TypingNote } from "../broker/types.ts";
import type { Catalog, MessageKey, MessageValues } from "../messages.ts";
import type {
  CommandSummary,
  ErrorCode,
  ErrorEvent,
  GapEvent,
  GapReason,
  HelpEvent,
  MembersEvent,
  MessageEvent,
  PresenceEvent,
  PrivateEvent,
  RoomsEvent,
  RoomSummary,
  SystemEvent,
  TypingEvent,
  WelcomeEvent,
} from "../vocabulary/events.ts";
import type { RequestProblem } from "../vocabulary/requests.ts";

/** Shown when a moderator gives no reason. */
export const NO_REASON = "no reason given";

/** A room as events name it: its name and the epoch of its log. */
export interface RoomLike {
  readonly name: string;
  readonly epoch: string;
}

/** What an {@linkcode EventFactory} is built from. */
export interface EventFactoryOptions {
  readonly catalog: Catalog;
  /** The clock stamped on events, in milliseconds since the Unix epoch. */
  readonly now: () => number;
  /** Makes ids unique across instances: this instance's id, or "" alone. */
  readonly idPrefix: string;
}

/** Builds the events of one chat. */
export class EventFactory {
  readonly #catalog: Catalog;
  readonly #now: () => number;
  readonly #idPrefix: string;
  #nextSerial = 1;

  constructor(options: EventFactoryOptions) {
    this.#catalog = options.catalog;
    this.#now = options.now;
    this.#idPrefix = options.idPrefix === "" ? "" : `${options.idPrefix}.`;
  }

  /** A new event id, unique across the cluster: the instance's id is its prefix. */
  nextId(): string {
    return this.#idPrefix + (this.#nextSerial++).toString(36);
  }

  /** Renders one of the configured texts. */
  text<K extends MessageKey>(key: K, values: MessageValues<K>): string {
    return this.#catalog.render(key, values);
  }

  /** The first event of a session: who the user is, where, and the token to resume with. */
  welcome(session: { name: string; token: string; room: RoomLike; rank: number }): WelcomeEvent {
    const { name, token, room, rank } = session;
    const body = this.text("welcome", { name });
    const event: WelcomeEvent = {
      ...this.#base("SERVER", body),
      type: "welcome",
      name,
      room: room.name,
      epoch: room.epoch,
      token,
    };
    return rank > 0 ? { ...event, rank } : event;
  }

  /** Said before a backlog that may not hold everything the client missed, or when messages were lost. */
  gap(room: RoomLike, reason: GapReason): GapEvent {
    const key = reason === "epoch" ? "gap_epoch" : reason === "lost" ? "gap_lost" : "gap_trimmed";
    const body = this.text(key, { room: room.name });
    return {
      ...this.#base("SERVER", body),
      type: "gap",
      room: room.name,
      epoch: room.epoch,
      reason,
    };
  }

  /** A notice or a command's answer; `room` when it is about one room (with its log's epoch). */
  system<K extends MessageKey>(key: K, values: MessageValues<K>, room?: RoomLike): SystemEvent {
    const text = this.text(key, values);
    const event = { ...this.#base("SERVER", text), type: "system" as const, text };
    return room === undefined ? event : { ...event, room: room.name, epoch: room.epoch };
  }

  /** A request that could not be done: a stable `code`, and the configured text `key`. */
  error<K extends MessageKey>(code: ErrorCode, key: K, values: MessageValues<K>): ErrorEvent {
    const text = this.text(key, values);
    return { ...this.#base("SERVER", text), type: "error", code, text };
  }

  /** The error answering a request that could not be read. */
  problem(problem: RequestProblem): ErrorEvent {
    switch (problem.code) {
      case "usage":
        return this.error("usage", "usage", { usage: problem.usage });
      case "unknown_command":
        return this.error("unknown_command", "unknown_command", { text: problem.command });
      case "bad_request":
        return this.error("bad_request", "bad_request", { reason: problem.reason });
      case "binary_unsupported":
        return this.error("binary_unsupported", "binary_refused", {});
    }
  }

  /** Who is in `room`: on entering it (the newcomer last), or as asked. */
  members(room: RoomLike, members: readonly string[], entering: boolean): MembersEvent {
    const names = members.join(", ");
    const body = entering
      ? this.text("room_entered", { room: room.name, members: names })
      : this.text("who", { names });
    return {
      ...this.#base("SERVER", body),
      type: "members",
      room: room.name,
      members,
      epoch: room.epoch,
    };
  }

  rooms(rooms: readonly RoomSummary[]): RoomsEvent {
    const listing = rooms.map((room) =>
      room.topic === undefined
        ? `${room.name} (${room.members})`
        : `${room.name} (${room.members}, topic: ${room.topic})`
    ).join(", ");
    return {
      ...this.#base("SERVER", this.text("rooms", { rooms: listing })),
      type: "rooms",
      rooms,
    };
  }

  /** Every command, or the one asked about. */
  help(commands: readonly CommandSummary[], one: boolean): HelpEvent {
    const body = one
      ? this.text("help_command", { usage: commands[0].usage, summary: commands[0].summary })
      : this.text("help", {
        commands: commands.map((command) => `${command.usage} - ${command.summary}`).join("\n"),
      });
    return { ...this.#base("SERVER", body), type: "help", commands };
  }

  /**
   * A message said in `room`, where it is number `seq` of the log's
   * `epoch`; or an entry there that changes an earlier message.
   */
  message(note: MessageNote, room: string, seq: number, epoch: string): MessageEvent {
    const { id, sentAt, author, text, emote, change } = note;
    const from = author.name;
    const event: MessageEvent = {
      type: "message",
      id,
      sentAt,
      origin: "USER",
      body: change === undefined
        ? this.#line(from, text, emote)
        : change.action === "edit"
        ? this.text("message_edited", { name: from, message: text })
        : this.#removal(change.author, from),
      room,
      from,
      text,
      seq,
      emote,
      epoch,
      // The note's own author: nothing made on the way of every message.
      saidBy: author,
    };
    if (note.to !== undefined) return { ...event, to: note.to };
    return change === undefined ? event : { ...event, change };
  }

  /** A kept message as it reads after an edit to `text`. */
  edited(message: MessageEvent, text: string): MessageEvent {
    const line = this.#line(message.from, text, message.emote);
    return { ...message, text, edited: true, body: this.text("edited_line", { line }) };
  }

  /**
   * An edit of a message removed since, as it reads from then on: a removal,
   * its text gone too (a removed message's text is shown nowhere).
   */
  scrubbed(edit: MessageEvent): MessageEvent {
    const { change } = edit;
    if (change === undefined) return edit;
    return {
      ...edit,
      text: "",
      change: { ...change, action: "delete" },
      body: this.#removal(change.author, edit.from),
    };
  }

  #removal(author: string, by: string): string {
    return author === by
      ? this.text("message_removed", { name: author })
      : this.text("message_removed_by", { name: author, by });
  }

  /** A kept message as it reads once removed: its text gone. */
  removed(message: MessageEvent): MessageEvent {
    const body = this.text("removed_line", { name: message.from });
    return { ...message, text: "", emote: false, edited: false, removed: true, body };
  }

  #line(name: string, text: string, emote: boolean): string {
    return emote
      ? this.text("emote", { name, action: text })
      : this.text("chat", { name, message: text });
  }

  /** Someone arrived in, left or was renamed in `room`, whose log is in `epoch`. */
  presence(note: PresenceNote, room: string, epoch: string): PresenceEvent {
    const { author: { name }, notice, action, oldName, by, reason } = note;
    const body = notice === "renamed"
      ? this.text("renamed", { old: oldName ?? name, new: name })
      : notice === "joined"
      ? this.text("room_joined", { name, room })
      : notice === "left"
      ? this.text("room_left", { name, room })
      : notice === "kicked" || notice === "banned"
      ? this.text(notice, { name, by: by ?? "a moderator", reason: reason ?? NO_REASON })
      : this.text(notice, { name });
    const event: PresenceEvent = {
      id: note.id,
      sentAt: note.sentAt,
      origin: "SERVER",
      body,
      type: "presence",
      action,
      room,
      from: name,
      epoch,
      oldName,
    };
    return by === undefined ? event : { ...event, by, reason: reason ?? NO_REASON };
  }

  /** Someone is typing in `room` (no line: the text protocol shows none). */
  typing(note: TypingNote, room: string): TypingEvent {
    return {
      id: this.nextId(),
      sentAt: note.sentAt,
      origin: "USER",
      body: "",
      type: "typing",
      room,
      from: note.author.name,
    };
  }

  /** A private message as its target sees it, or (`sent`) as its sender does. */
  private(note: PrivateNote, copy: "received" | "sent"): PrivateEvent {
    const { from, to, text } = note;
    const received = copy === "received";
    const body = received
      ? this.text("pm_received", { from, message: text })
      : this.text("pm_sent", { to, message: text });
    return {
      id: received ? note.id : this.nextId(),
      sentAt: note.sentAt,
      origin: "PRIVATE",
      body,
      type: "private",
      from,
      to,
      text,
    };
  }

  /**
   * A private message kept in the inbox of `owner`, as the owner's devices
   * see it: live, or (`replayed`) from the inbox's history.
   */
  kept(message: MessageEvent, owner: string, replayed: boolean): PrivateEvent {
    const { id, sentAt, from, text, epoch, seq } = message;
    const to = message.to ?? owner;
    // Said by someone else (a look-alike account too): received; by the owner: sent.
    const received = from !== owner;
    const body = received
      ? this.text("pm_received", { from, message: text })
      : this.text("pm_sent", { to, message: text });
    const origin = replayed ? "HISTORY" : "PRIVATE";
    return { id, sentAt, origin, body, type: "private", from, to, text, epoch, seq };
  }

  #base(origin: "SERVER", body: string): {
    id: string;
    sentAt: number;
    origin: "SERVER";
    body: string;
  } {
    return { id: this.nextId(), sentAt: this.#now(), origin, body };
  }
}

/** A kept message of a room in `epoch`, as replayed to someone arriving or catching up. */
export function asHistory(message: MessageEvent, epoch: string): MessageEvent {
  return { ...message, type: "history", origin: "HISTORY", epoch };
}
