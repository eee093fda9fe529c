/**
 * Each room's settings as moderators last saved them (its topic and slow
 * mode), the notices a change gives the room, and slow mode's memory of who
 * spoke when: per room, per user and per address (and per account in token
 * mode), so hopping rooms or reconnecting does not start the wait again.
 *
 * @module
 */

import { rank } from "../auth/tokens.ts";
import type { ModerationRecord, RoomRecord } from "../broker/types.ts";
import { MAX_SLOW_SECONDS } from "../text/duration.ts";
import { nameKey, sameName } from "../text/names.ts";
import type { EventFactory } from "./event_factory.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { User } from "./user.ts";

/** What {@linkcode RoomSettings} works with. */
export interface RoomSettingsOptions {
  readonly events: EventFactory;
  readonly now: () => number;
  readonly rooms: RoomDirectory<User>;
}

/** The settings of every room, as the records say. */
export class RoomSettings {
  readonly #options: RoomSettingsOptions;
  /** Each room's settings as last applied here, by room key, to tell what changed. */
  readonly #settings = new Map<string, RoomRecord>();
  /** Slow mode's seconds, by room key, for the rooms that have it. */
  readonly #slow = new Map<string, number>();
  /** When each speaker last spoke in each slow room: `<room key> <who>`. */
  readonly #spoke = new Map<string, number>();

  constructor(options: RoomSettingsOptions) {
    this.#options = options;
  }

  /** The settings of `room` now, if it has any. */
  current(room: string): RoomRecord | undefined {
    return this.#settings.get(nameKey(room));
  }

  /** The topic of `room`, when it has one. */
  topicOf(room: string): string | undefined {
    const topic = this.current(room)?.topic;
    return topic === "" ? undefined : topic;
  }

  /**
   * Seconds `user` must still wait before speaking in their room's slow
   * mode, or `undefined` when they may (and then the time is noted). The
   * wait is the user's and their address's, whichever room they spoke in
   * meanwhile and however often they reconnected. Moderators are not slowed.
   */
  slowWait(user: User): number | undefined {
    if (this.#slow.size === 0) return undefined;
    const room = nameKey(user.room.name);
    const slow = this.#slow.get(room) ?? 0;
    if (slow === 0 || rank(user.roles) > 0) return undefined;
    const now = this.#options.now();
    const speakers = [`${room} user:${user.id}`];
    if (user.addressKey !== undefined) speakers.push(`${room} address:${user.addressKey}`);
    if (user.verified) speakers.push(`${room} account:${nameKey(user.name)}`);
    // The room's history holds what the user said through other instances, and before a restart.
    const said = user.room.lastSaidBy((name) => sameName(name, user.name), now - slow * 1000);
    const last = Math.max(
      said ?? -Infinity,
      ...speakers.map((speaker) => this.#spoke.get(speaker) ?? -Infinity),
    );
    const wait = last + slow * 1000 - now;
    if (wait > 0) return Math.ceil(wait / 1000);
    for (const speaker of speakers) this.#spoke.set(speaker, now);
    return undefined;
  }

  /** A room's record changed (by room key): its members here hear what changed. */
  changed(key: string, record: ModerationRecord | undefined): void {
    const previous = this.#settings.get(key);
    if (record?.kind !== "room") {
      this.#settings.delete(key);
      this.#slow.delete(key);
      return;
    }
    this.#settings.set(key, record);
    if (record.slow > 0) this.#slow.set(key, record.slow);
    else this.#slow.delete(key);
    const room = this.#options.rooms.find(record.room);
    if (room === undefined) return;
    const { events } = this.#options;
    const { by, topic, slow } = record;
    const notices = [];
    if (topic !== (previous?.topic ?? "")) {
      notices.push(
        topic === ""
          ? events.system("topic_cleared", { by, room: room.name }, room)
          : events.system("topic_set", { by, room: room.name, topic }, room),
      );
    }
    if (slow !== (previous?.slow ?? 0)) {
      notices.push(
        slow === 0
          ? events.system("slow_off", { by, room: room.name }, room)
          : events.system("slow_set", { by, room: room.name, seconds: String(slow) }, room),
      );
    }
    for (const member of room.members) {
      for (const notice of notices) member.sink.send(notice);
    }
  }

  /** Forgets speakers quiet for the longest slow mode: they can no longer be waiting. */
  sweep(): void {
    const now = this.#options.now();
    for (const [speaker, at] of this.#spoke) {
      if (now - at >= MAX_SLOW_SECONDS * 1000) this.#spoke.delete(speaker);
    }
  }
}
