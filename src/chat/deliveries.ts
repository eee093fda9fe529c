/**
 * What the broker delivers, applied to this server's users: room events in
 * the order of their room's log (a message seen before is not news), private
 * messages, moderation records and kicks, handovers, and the state of the
 * link to the other instances and of the history store.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { rank } from "../auth/tokens.ts";
import {
  type Author,
  type Broker,
  type BrokerHandler,
  inboxOwner,
  logKey,
  type LogPosition,
  type PrivateNote,
  type RoomNote,
  type TypingNote,
} from "../broker/types.ts";
import { isDeparture } from "../broker/departures.ts";
import type { Metrics } from "../metrics.ts";
import type { ChatEvent, MessageEvent } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";
import type { Inboxes } from "./inboxes.ts";
import type { Moderation } from "./moderation.ts";
import type { Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { Sessions } from "./sessions.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

const log = getLogger(["chat", "room"]);

/**
 * Presence notes remembered by room and id, so one delivered twice shows
 * once: arrivals and moves, and apart (so that no flood of those pushes them
 * out), the ends of sessions, which a cut-off instance and its survivors
 * both say.
 */
const PRESENCE_IDS_KEPT = 4096;
const DEPARTURES_KEPT = 65_536;

/** What {@linkcode createDeliveries} works with, shared with the chatroom. */
export interface DeliveriesOptions {
  readonly broker: Broker;
  readonly metrics: Metrics;
  readonly events: EventFactory;
  readonly users: UserDirectory;
  readonly rooms: RoomDirectory<User>;
  readonly sessions: Sessions;
  readonly moderation: Moderation;
  readonly inboxes: Inboxes;
}

/** The handler the chatroom attaches to its broker. */
export function createDeliveries(options: DeliveriesOptions): BrokerHandler {
  const { broker, events, metrics, users, rooms, sessions, moderation, inboxes } = options;
  /** The ids of the newest presence notes delivered, oldest first. */
  const seenPresence = new Remembered(PRESENCE_IDS_KEPT);
  const seenDepartures = new Remembered(DEPARTURES_KEPT);

  /** Sends one event object to everyone in `room` but `except`; sinks never block or throw. */
  const broadcast = (room: Room<User>, event: ChatEvent, except?: User): void => {
    for (const member of room.members) {
      if (member !== except) member.sink.send(event);
    }
  };

  /**
   * Another message under a seq `log` holds: a broken promise, said and
   * counted, and the message still reaches everyone rather than vanishing.
   */
  const conflict = (held: Room<unknown>, message: MessageEvent): void => {
    metrics.historyConflicts.inc();
    log.error("Log {log} already holds seq {seq} ({kept}); {id} was numbered with it", {
      log: held.name,
      seq: message.seq,
      kept: held.keptAt(message.seq)?.id,
      id: message.id,
    });
  };

  /** The local user an event is about, if it is one of ours. */
  const localAuthor = (author: Author): User | undefined =>
    author.instance === broker.instance ? users.byId(author.userId) : undefined;

  /** Tells every user something about the server as a whole. */
  const notifyAll = (key: "degraded" | "recovered" | "history_saved" | "history_unsaved") => {
    if (key === "degraded") {
      log.warning("Lost the link to the other instances; serving local users only");
    }
    if (key === "recovered") log.info("The link to the other instances is back");
    const notice = events.system(key, {});
    for (const user of users.all()) user.sink.send(notice);
  };

  /** A private message from another instance (a signed account's go through its inbox). */
  const deliverPrivate = (note: PrivateNote): void => {
    users.find(note.to)?.sink.send(events.private(note, "received"));
  };

  return {
    deliverRoomNote(note: RoomNote, position?: LogPosition): void {
      if (inboxOwner(note.room) !== undefined) {
        if (note.kind === "message") inboxes.deliver(note, position, conflict);
        return;
      }
      const room = rooms.ensure(note.room);
      const author = localAuthor(note.author);
      if (note.kind === "message") {
        const { epoch = room.epoch, seq = room.nextSeq } = position ?? {};
        const said = events.message(note, room.name, seq, epoch);
        const { change } = note;
        const changed = change === undefined ? undefined : room.keptById(change.target);
        // An edit that comes after its message's removal (two instances at once) shows no text.
        const message = changed?.removed && change?.action === "edit"
          ? events.scrubbed(said)
          : said;
        const kept = room.keep(message, epoch);
        // A message seen before (delivered again after a reconnect) is not news.
        if (kept === "seen") return;
        if (kept === "conflict") conflict(room, message);
        if (change !== undefined && changed !== undefined && !changed.removed) {
          // The changed message reads changed from now on, in history too; once removed, so do
          // its edits, whose text would otherwise still be read there.
          if (change.action === "edit") room.replace(changed, events.edited(changed, note.text));
          else {
            room.replace(changed, events.removed(changed));
            for (const edit of room.editsOf(changed.id)) room.replace(edit, events.scrubbed(edit));
          }
        }
        broadcast(room, message, author);
        author?.sink.send(message, true);
        return;
      }
      // The same note twice (every survivor says goodbye for a gone instance's users) shows once.
      const seen = isDeparture(note) ? seenDepartures : seenPresence;
      if (!seen.first(`${logKey(note.room)} ${note.id}`)) return;
      const event = events.presence(note, room.name, room.epoch);
      // A rename is news to the renamed user too; an arrival or departure is not.
      broadcast(room, event, note.action === "rename" ? undefined : author);
    },
    deliverPrivate,
    deliverTyping(note: TypingNote): void {
      const room = rooms.find(note.room);
      if (room === undefined) return;
      broadcast(room, events.typing(note, room.name), localAuthor(note.author));
    },
    nameLost(name) {
      const user = users.find(name);
      if (user !== undefined) sessions.nameLost(user);
    },
    nameLapsed(name) {
      const user = users.find(name);
      if (user === undefined || user.name !== name) return;
      if (user.lingering === undefined) {
        metrics.connectionsClosed.inc("try_again");
        user.sink.send(events.error("unavailable", "name_lapsed", { name }));
        user.sink.close("retry");
      }
      sessions.endQuietly(user);
    },
    setDegraded: (degraded) => notifyAll(degraded ? "degraded" : "recovered"),
    messagesLost(name) {
      if (inboxOwner(name) !== undefined) return inboxes.lost(name);
      const room = rooms.find(name);
      if (room !== undefined) broadcast(room, events.gap(room, "lost"));
    },
    setHistorySaved: (saved) => notifyAll(saved ? "history_saved" : "history_unsaved"),
    handOver: (name, token, verified) => sessions.handOver(name, token, verified),
    forgetHistory(log) {
      if (inboxOwner(log) === undefined) rooms.find(log)?.forget();
      else inboxes.forget(log);
    },
    recordChanged: (key, record) => moderation.recordChanged(key, record),
    deliverKick: (note) => moderation.deliverKick(note),
    rankOf(name) {
      const user = users.find(name);
      return user === undefined ? undefined : rank(user.roles);
    },
  };
}

/** Keys remembered, `bound` at most, the oldest forgotten first. */
class Remembered {
  readonly #keys = new Set<string>();
  readonly #bound: number;

  constructor(bound: number) {
    this.#bound = bound;
  }

  /** Remembers `key`; says whether it is new. */
  first(key: string): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.#bound) this.#keys.delete(this.#keys.values().next().value!);
    return true;
  }
}
