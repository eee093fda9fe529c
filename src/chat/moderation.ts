/**
 * What moderators do: kick, mute, ban, and set a room's topic and slow mode.
 * Bans, mutes and room settings are records the broker keeps and shares, so
 * they hold on every instance and across restarts; each instance applies a
 * record when the broker says it changed (a new ban removes the users it
 * names here), whoever decided it. Kicks go to the target's instance.
 *
 * The same operations serve moderators in the chat and the server API;
 * permissions are checked by the caller, ranks here.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { rank } from "../auth/tokens.ts";
import {
  type BanRecord,
  type Broker,
  type HoldRecord,
  type KickNote,
  type ModerationRecord,
  recordKey,
  type RoomRecord,
  type Settled,
} from "../broker/types.ts";
import { formatDuration, MAX_DURATION_SECONDS } from "../text/duration.ts";
import type { Metrics, ModerationAction } from "../metrics.ts";
import { nameKey, nameProblem } from "../text/names.ts";
import { type EventFactory, NO_REASON } from "./event_factory.ts";
import type { RoomDirectory } from "./rooms.ts";
import { cleanText, truncateText } from "../text/sanitize.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

const log = getLogger(["chat", "moderation"]);

/** Who acts: a moderator in the chat, or the server API (which outranks everyone). */
export interface Moderator {
  readonly name: string;
  readonly rank: number;
}

/** The server API, as a moderator: above admins, so it may act on anyone. */
export const API_MODERATOR: Moderator = { name: "api", rank: 3 };

/** How a user leaves when a moderator removes them. */
export interface Removal {
  readonly notice: "kicked" | "banned";
  readonly by: string;
  readonly reason: string;
}

/** What came of a moderation request: done (and what, in words), or why not. */
export type Outcome =
  | { readonly ok: true; readonly what: string }
  | { readonly ok: false; readonly problem: "not_found" | "outranked" | "not_saved" | "invalid" };

/** What {@linkcode Moderation} works with, shared with the chatroom. */
export interface ModerationOptions {
  readonly now: () => number;
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly users: UserDirectory;
  readonly rooms: RoomDirectory<User>;
  readonly metrics: Metrics;
  /** Open mode, where names are free to pick: a user's ban or mute also holds their address. */
  readonly byAddress: boolean;
  /** Removes a local user, telling them and their room why. */
  readonly remove: (user: User, removal: Removal) => void;
}

/** An IPv4 or IPv6 address, as a ban target (names never hold a colon or look like this). */
const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)$/i;

/** Longest topic and reason, in characters. */
const MAX_TOPIC_LENGTH = 200;
const MAX_REASON_LENGTH = 200;

/** A moderator's text, safe to show: one line, cut short. */
function cleanLine(text: string, max: number): string {
  return truncateText(cleanText(text).trim(), max);
}

/** Seconds a mute or ban may last: at least one, at most a year. */
function clampSeconds(seconds: number): number {
  return Math.min(Math.max(1, Math.floor(seconds)), MAX_DURATION_SECONDS);
}
/** Longest slow mode, in seconds. */
export const MAX_SLOW_SECONDS = 3600;

/** The moderation of one server. */
export class Moderation {
  readonly #options: ModerationOptions;
  /** Each room's settings as last applied here, by room key, to tell what changed. */
  readonly #roomSettings = new Map<string, RoomRecord>();
  /** Slow mode's seconds, by room key, for the rooms that have it. */
  readonly #slow = new Map<string, number>();
  /** The keys of mutes in force, so that a message costs no lookup when nobody is muted. */
  readonly #muted = new Set<string>();

  constructor(options: ModerationOptions) {
    this.#options = options;
  }

  // ---- what the chat and the API ask ----

  /**
   * The ban that keeps out this name or this address now, if any; one set
   * by someone of `rank` or lower does not hold a user of that rank.
   */
  banOf(name: string | undefined, address: string | undefined, rank = 0): BanRecord | undefined {
    const records = this.#options.broker.records();
    const now = this.#options.now();
    for (
      const key of [
        name === undefined ? undefined : `ban:name:${nameKey(name)}`,
        address === undefined ? undefined : `ban:address:${address}`,
      ]
    ) {
      const record = key === undefined ? undefined : records.get(key);
      if (record?.kind === "ban" && record.until > now && record.byRank > rank) return record;
    }
    return undefined;
  }

  /** Every ban in force, soonest to end first. */
  bans(): BanRecord[] {
    const now = this.#options.now();
    return [...this.#options.broker.records().values()]
      .filter((record): record is BanRecord => record.kind === "ban" && record.until > now)
      .sort((a, b) => a.until - b.until);
  }

  /** Seconds left of `user`'s mute (by name, or by address in open mode), or `undefined`. */
  mutedFor(user: User): number | undefined {
    if (this.#muted.size === 0) return undefined;
    const records = this.#options.broker.records();
    const now = this.#options.now();
    let left = 0;
    for (const key of [`mute:${nameKey(user.name)}`, `mute:address:${user.address}`]) {
      if (!this.#muted.has(key)) continue;
      const record = records.get(key);
      if (record?.kind === "mute" && record.byRank > rank(user.roles)) {
        left = Math.max(left, record.until - now);
      }
    }
    return left > 0 ? left / 1000 : undefined;
  }

  /**
   * Seconds `user` must still wait before speaking in their room's slow
   * mode, or `undefined` when they may (and then the time is noted).
   * Moderators are not slowed.
   */
  slowWait(user: User): number | undefined {
    if (this.#slow.size === 0) return undefined;
    const key = nameKey(user.room.name);
    const slow = this.#slow.get(key) ?? 0;
    const now = this.#options.now();
    if (slow > 0 && rank(user.roles) === 0 && user.lastSaid?.room === key) {
      const wait = user.lastSaid.at + slow * 1000 - now;
      if (wait > 0) return Math.ceil(wait / 1000);
    }
    user.lastSaid = { room: key, at: now };
    return undefined;
  }

  /** The topic of `room`, when it has one. */
  topicOf(room: string): string | undefined {
    const topic = this.#roomSettings.get(nameKey(room))?.topic;
    return topic === "" ? undefined : topic;
  }

  /** Disconnects the user called `name`, here or on their instance (which checks ranks too). */
  kick(by: Moderator, name: string, reason: string, notice: Removal["notice"] = "kicked"): Outcome {
    const { users, broker } = this.#options;
    const why = cleanLine(reason, MAX_REASON_LENGTH) || NO_REASON;
    const local = users.find(name);
    if (local !== undefined) {
      if (rank(local.roles) >= by.rank) return { ok: false, problem: "outranked" };
      this.#count("kick", by, local.name, why);
      this.#options.remove(local, { notice, by: by.name, reason: why });
      return { ok: true, what: `${local.name} was removed` };
    }
    const remote = broker.findRemote(name);
    if (remote === undefined) return { ok: false, problem: "not_found" };
    this.#count("kick", by, remote.name, why);
    const note: KickNote = { name: remote.name, by: by.name, byRank: by.rank, reason: why, notice };
    broker.publishKick(note, remote);
    return { ok: true, what: `${remote.name} was removed` };
  }

  /** Silences `name` for `seconds`, wherever they are (and if they come back). */
  mute(by: Moderator, name: string, seconds: number, reason: string): Settled<Outcome> {
    const checked = this.#checkTarget(by, name);
    if (checked !== undefined) return checked;
    const { base, length } = this.#holdBase("mute", by, seconds, reason);
    this.#count("mute", by, name, base.reason);
    return this.#save(
      this.#nameHold(base, name).map((record) => [recordKey(record), record]),
      `${name} is muted for ${formatDuration(length)}`,
    );
  }

  unmute(by: Moderator, name: string): Settled<Outcome> {
    return this.#lift("mute", by, `mute:${nameKey(name)}`, name, `${name} may speak again`);
  }

  /**
   * Bans an address, or a name (in open mode with the address its user has
   * here), for `seconds`; a user it names is removed wherever they are.
   */
  ban(by: Moderator, target: string, seconds: number, reason: string): Settled<Outcome> {
    const { base, length } = this.#holdBase("ban", by, seconds, reason);
    let records: BanRecord[];
    if (ADDRESS.test(target)) {
      records = [{ ...base, address: target.toLowerCase() }];
    } else {
      const checked = this.#checkTarget(by, target);
      if (checked !== undefined) return checked;
      records = this.#nameHold(base, target);
    }
    this.#count("ban", by, target, base.reason);
    return this.#save(
      records.map((record) => [recordKey(record), record]),
      `${target} is banned for ${formatDuration(length)}`,
    );
  }

  /** Lifts the ban of an address, or of a name and the address banned with it. */
  unban(by: Moderator, target: string): Settled<Outcome> {
    const key = ADDRESS.test(target)
      ? `ban:address:${target.toLowerCase()}`
      : `ban:name:${nameKey(target)}`;
    return this.#lift("ban", by, key, target, `${target} is no longer banned`);
  }

  /** What every record of one ban or mute holds, and its length in seconds. */
  #holdBase<K extends "ban" | "mute">(kind: K, by: Moderator, seconds: number, reason: string) {
    const now = this.#options.now();
    const length = clampSeconds(seconds);
    const base = {
      kind,
      until: now + length * 1000,
      reason: cleanLine(reason, MAX_REASON_LENGTH) || NO_REASON,
      by: by.name,
      byRank: by.rank,
      at: now,
    };
    return { base, length };
  }

  /** The records of a ban or mute of `name`: in open mode, its user's address too (a new name would escape it). */
  #nameHold<K extends "ban" | "mute">(
    base: Omit<HoldRecord<K>, "name" | "address">,
    name: string,
  ): HoldRecord<K>[] {
    const local = this.#options.users.find(name);
    const address = this.#options.byAddress ? local?.address : undefined;
    const records: HoldRecord<K>[] = [{ ...base, name: local?.name ?? name, address }];
    if (address !== undefined) records.push({ ...base, address });
    return records;
  }

  /** Lifts the ban or mute saved under `key`, with the address record decided with it. */
  #lift(
    kind: "ban" | "mute",
    by: Moderator,
    key: string,
    target: string,
    done: string,
  ): Settled<Outcome> {
    const records = this.#options.broker.records();
    const record = records.get(key);
    if (record?.kind !== kind) return { ok: false, problem: "not_found" };
    if (record.byRank > by.rank) return { ok: false, problem: "outranked" };
    this.#count(kind === "ban" ? "unban" : "unmute", by, target, "");
    const lifted: [string, undefined][] = [[key, undefined]];
    if (record.name !== undefined && record.address !== undefined) {
      const linked = `${kind}:address:${record.address}`;
      const other = records.get(linked);
      // Unless it was decided again since.
      if (other?.kind === kind && other.at === record.at) lifted.push([linked, undefined]);
    }
    return this.#save(lifted, done);
  }

  /** Changes a room's topic or slow mode; everyone in it hears of it. */
  setRoom(
    by: Moderator,
    room: string,
    change: { topic?: string; slow?: number },
  ): Settled<Outcome> {
    const key = nameKey(room);
    const current = this.#roomSettings.get(key);
    const now = this.#options.now();
    const record: RoomRecord = {
      kind: "room",
      room,
      topic: change.topic === undefined
        ? current?.topic ?? ""
        : cleanLine(change.topic, MAX_TOPIC_LENGTH),
      slow: change.slow ?? current?.slow ?? 0,
      by: by.name,
      at: now,
    };
    this.#count(change.topic === undefined ? "slow" : "topic", by, room, "");
    return this.#save([[`room:${key}`, record]], `the settings of ${room} are saved`);
  }

  // ---- what the broker says ----

  /** A record changed (here or elsewhere): the users it concerns here are told, or removed. */
  recordChanged(key: string, record: ModerationRecord | undefined): void {
    if (key.startsWith("room:")) return this.#roomChanged(key.slice(5), record);
    if (key.startsWith("mute:")) {
      if (record?.kind === "mute") this.#muted.add(key);
      else this.#muted.delete(key);
      // Address mutes go with a name's: its user is told once, about the name.
      if (key.startsWith("mute:address:")) return;
      // A name key is its own key: finding by it finds the user.
      const user = this.#options.users.find(key.slice(5));
      if (user === undefined) return;
      if (record?.kind === "mute") {
        const seconds = (record.until - this.#options.now()) / 1000;
        if (seconds <= 0 || record.byRank <= rank(user.roles)) return;
        const { by, reason } = record;
        user.sink.send(
          this.#options.events.system("muted", { duration: formatDuration(seconds), by, reason }),
        );
      } else {
        user.sink.send(this.#options.events.system("unmuted", {}));
      }
      return;
    }
    if (record?.kind !== "ban" || record.until <= this.#options.now()) return;
    const removal: Removal = { notice: "banned", by: record.by, reason: record.reason };
    for (const user of [...this.#options.users.all()]) {
      const userRank = rank(user.roles);
      if (userRank >= record.byRank) continue;
      const named = record.name !== undefined && nameKey(user.name) === nameKey(record.name);
      // Moderators sharing a banned address (the banner, say) stay.
      const fromAddress = record.address !== undefined && user.address === record.address &&
        userRank === 0;
      if (!named && !fromAddress) continue;
      // Open mode: a name banned elsewhere holds the address its user has here.
      if (named && record.address === undefined && this.#options.byAddress && user.address) {
        const address: BanRecord = { ...record, name: undefined, address: user.address };
        this.#save([[recordKey(address), address]], "");
      }
      this.#options.remove(user, removal);
    }
  }

  /** Another instance's moderator removes a local user. */
  deliverKick(note: KickNote): void {
    const user = this.#options.users.find(note.name);
    if (user === undefined) return;
    if (rank(user.roles) >= note.byRank) {
      log.warning("Ignored {by}'s kick of {name}, who outranks them", {
        by: note.by,
        name: note.name,
      });
      return;
    }
    this.#options.remove(user, { notice: note.notice, by: note.by, reason: note.reason });
  }

  /** Deletes the bans and mutes that have run out (unless decided again meanwhile). */
  sweep(): void {
    const now = this.#options.now();
    for (const [key, record] of this.#options.broker.records()) {
      if (record.kind === "room" || record.until > now) continue;
      Promise.resolve(this.#options.broker.removeExpired(key, record.at)).catch((error) => {
        log.warning("Cannot delete an expired record: {error}", { error });
      });
    }
  }

  // ---- inside ----

  /** Why `by` may not act on the user called `name` now, or `undefined`. */
  #checkTarget(by: Moderator, name: string): Outcome | undefined {
    if (nameProblem(name) !== undefined) return { ok: false, problem: "invalid" };
    const local = this.#options.users.find(name);
    if (local !== undefined && rank(local.roles) >= by.rank) {
      return { ok: false, problem: "outranked" };
    }
    return undefined;
  }

  /** Saves the records, in order; done when all are. */
  #save(
    records: readonly (readonly [string, ModerationRecord | undefined])[],
    what: string,
  ): Settled<Outcome> {
    const { broker } = this.#options;
    const saved = Promise.all(records.map(([key, record]) => broker.saveRecord(key, record)));
    return saved.then((results): Outcome =>
      results.every(Boolean) ? { ok: true, what } : { ok: false, problem: "not_saved" }
    );
  }

  #roomChanged(key: string, record: ModerationRecord | undefined): void {
    const previous = this.#roomSettings.get(key);
    if (record?.kind !== "room") {
      this.#roomSettings.delete(key);
      this.#slow.delete(key);
      return;
    }
    this.#roomSettings.set(key, record);
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
          ? events.system("topic_cleared", { by, room: room.name }, room.name)
          : events.system("topic_set", { by, room: room.name, topic }, room.name),
      );
    }
    if (slow !== (previous?.slow ?? 0)) {
      notices.push(
        slow === 0
          ? events.system("slow_off", { by, room: room.name }, room.name)
          : events.system("slow_set", { by, room: room.name, seconds: String(slow) }, room.name),
      );
    }
    for (const member of room.members) {
      for (const notice of notices) member.sink.send(notice);
    }
  }

  #count(action: ModerationAction, by: Moderator, target: string, reason: string): void {
    this.#options.metrics.moderationActions.inc(action);
    log.info("Moderation: {by} {action} {target} ({reason})", {
      by: by.name,
      action,
      target,
      reason: reason === "" ? "-" : reason,
    });
  }
}
