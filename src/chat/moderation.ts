/**
 * What moderators do: kick, mute, ban, and set a room's topic and slow mode.
 * Bans, mutes and room settings are records the broker keeps and shares, so
 * they hold on every instance and across restarts; each instance applies a
 * record when the broker says it changed, whoever decided it: the instance
 * holding a banned user removes them, and in open mode holds their address
 * with their name (a record linked to the name's, lifted with it). Ranks are
 * checked against where the target is, so "Done" is said only when it was.
 *
 * The same operations serve moderators in the chat and the server API;
 * the request table says who may ask, this checks ranks.
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
  type KickResult,
  type ModerationRecord,
  recordKey,
  type RemoteUser,
  type RoomRecord,
  type Settled,
} from "../broker/types.ts";
import type { MessageKey, MessageValues } from "../messages.ts";
import type { Metrics, ModerationAction } from "../metrics.ts";
import { formatDuration } from "../text/duration.ts";
import { nameKey } from "../text/names.ts";
import { cleanText, truncateText } from "../text/sanitize.ts";
import type { ErrorCode } from "../vocabulary/events.ts";
import { type EventFactory, NO_REASON } from "./event_factory.ts";
import { Holds, networkHolds } from "./holds.ts";
import { RoomSettings } from "./room_settings.ts";
import { type Actor, type Outcome, settle } from "./outcome.ts";
import type { RoomDirectory } from "./rooms.ts";
import { readLiftTarget, readTarget, type Target, type TargetRefusal } from "./targets.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

const log = getLogger(["chat", "moderation"]);

/** How a user leaves when a moderator removes them. */
export interface Removal {
  readonly notice: "kicked" | "banned";
  readonly by: string;
  readonly reason: string;
}

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
  /** Why `name` can be nobody's (invalid, reserved), or `undefined`. */
  readonly problemOf: (name: string) => string | undefined;
  /** Who holds `name`, here or on another instance (see `Gate.holderOf`). */
  readonly holderOf: (name: string) => { local?: User; remote?: RemoteUser } | undefined;
  /** Removes a local user, telling them and their room why. */
  readonly remove: (user: User, removal: Removal) => void;
}

/** Longest topic and reason, in characters. */
const MAX_TOPIC_LENGTH = 200;
const MAX_REASON_LENGTH = 200;

/** A moderator's text, safe to show: one line, cut short. */
function cleanLine(text: string, max: number): string {
  return truncateText(cleanText(text).trim(), max);
}

/** A ban or a mute, as a moderator asks for it. */
export interface HoldRequest {
  readonly kind: "ban" | "mute";
  /** A user, `name:<name>` or `addr:<address or network>`. */
  readonly target: string;
  readonly seconds: number;
  readonly reason: string;
}

/** What a hold does, in words: `banned`, `muted`. */
const HELD: Readonly<Record<"ban" | "mute", string>> = { ban: "banned", mute: "muted" };

/** The moderation of one server. */
export class Moderation {
  readonly #options: ModerationOptions;
  readonly #holds = new Holds();
  /** Each room's topic and slow mode. */
  readonly settings: RoomSettings;

  constructor(options: ModerationOptions) {
    this.#options = options;
    const { events, now, rooms } = options;
    this.settings = new RoomSettings({ events, now, rooms });
  }

  // ---- what the chat and the API ask ----

  /**
   * The ban that keeps out this name (or a look-alike) or this address now,
   * if any; one set by someone of `rank` or lower does not hold a user of that rank.
   */
  banOf(name: string | undefined, address: string | undefined, rank = 0): BanRecord | undefined {
    const records = this.#options.broker.records.all();
    const now = this.#options.now();
    for (const key of this.#holds.keysFor("ban", name, address)) {
      const record = records.get(key);
      if (record?.kind === "ban" && record.until > now && record.byRank > rank) return record;
    }
    return undefined;
  }

  /** Every ban in force, soonest to end first. */
  bans(): BanRecord[] {
    const now = this.#options.now();
    return [...this.#options.broker.records.all().values()]
      .filter((record): record is BanRecord => record.kind === "ban" && record.until > now)
      .sort((a, b) => a.until - b.until);
  }

  /** Seconds left of `user`'s mute (by name, or by address), or `undefined`. */
  mutedFor(user: User): number | undefined {
    if (!this.#holds.anyMutes) return undefined;
    const records = this.#options.broker.records.all();
    const now = this.#options.now();
    let left = 0;
    for (const key of this.#holds.keysFor("mute", user.name, user.address)) {
      const record = records.get(key);
      if (record?.kind === "mute" && record.byRank > rank(user.roles)) {
        left = Math.max(left, record.until - now);
      }
    }
    return left > 0 ? left / 1000 : undefined;
  }

  /** Disconnects the user called `name`, here or on their instance (which checks ranks too). */
  kick(by: Actor, name: string, reason: string): Settled<Outcome> {
    const { broker } = this.#options;
    const why = cleanLine(reason, MAX_REASON_LENGTH) || NO_REASON;
    const { local, remote } = this.#options.holderOf(name) ?? {};
    if (local !== undefined) {
      if (rank(local.roles) >= by.rank) return this.#fail("forbidden", "outranked", { name });
      this.#count("kick", by, local.name, why);
      this.#options.remove(local, { notice: "kicked", by: by.name, reason: why });
      return { ok: true, done: `${local.name} was removed` };
    }
    if (remote === undefined) return this.#fail("user_not_found", "no_such_user", { name });
    if (remote.rank >= by.rank) return this.#fail("forbidden", "outranked", { name });
    const note: KickNote = {
      name: remote.name,
      by: by.name,
      byRank: by.rank,
      reason: why,
      notice: "kicked",
    };
    return settle(broker.cluster!.mail.kick(note, remote), (result) => {
      if (result === "done") {
        this.#count("kick", by, remote.name, why);
        return { ok: true, done: `${remote.name} was removed` };
      }
      return this.#kickFailed(result, name);
    });
  }

  /**
   * Bans or mutes a target (see `targets.ts`) for `seconds`, wherever it is;
   * a user on another instance is outranked or not by their rank there now.
   */
  hold(by: Actor, hold: HoldRequest): Settled<Outcome> {
    const target = this.#readTarget(hold.target);
    if ("problem" in target) return this.#targetRefused(target);
    if (target.kind !== "user") return this.#save(this.#holdRecord(by, hold, target));
    const rankThere = target.local === undefined
      ? this.#options.broker.cluster!.mail.rankOf(target.remote!)
      : rank(target.local.roles);
    return settle(rankThere, (held) => {
      if (held === undefined) {
        return this.#fail("user_not_found", "no_such_user", { name: target.name });
      }
      if (held >= by.rank) return this.#fail("forbidden", "outranked", { name: target.name });
      return this.#save(this.#holdRecord(by, hold, target));
    });
  }

  /** The record of a hold, what it says when done, and its count. */
  #holdRecord(
    by: Actor,
    hold: HoldRequest,
    target: Exclude<Target, TargetRefusal>,
  ): { records: [string, HoldRecord<"ban" | "mute">][]; done: string } {
    const { kind, seconds } = hold;
    const now = this.#options.now();
    const base = {
      kind,
      until: now + seconds * 1000,
      reason: cleanLine(hold.reason, MAX_REASON_LENGTH) || NO_REASON,
      by: by.name,
      byRank: by.rank,
      at: now,
    };
    const record: HoldRecord<typeof kind> = target.kind === "address"
      ? { ...base, address: target.network }
      : { ...base, name: target.name };
    const shown = target.kind === "address" ? target.network : target.name;
    this.#count(kind, by, shown, base.reason);
    return {
      records: [[recordKey(record), record]],
      done: `${shown} is ${HELD[kind]} for ${formatDuration(seconds)}`,
    };
  }

  /** Lifts the ban or mute of a name (with the addresses held with it) or of an address. */
  lift(by: Actor, kind: "ban" | "mute", text: string): Settled<Outcome> {
    const records = this.#options.broker.records.all();
    const named = (name: string): string | undefined =>
      this.#holds.keysFor(kind, name, undefined).next().value ?? undefined;
    const target = readLiftTarget(text, (name) => named(name) !== undefined);
    if ("problem" in target) return this.#targetRefused(target);
    const key = "name" in target ? named(target.name) : `${kind}:address:${target.network}`;
    const record = key === undefined ? undefined : records.get(key);
    const shown = "name" in target ? target.name : target.network;
    if (key === undefined || record?.kind !== kind) {
      return this.#fail("user_not_found", "not_held", { target: shown, what: HELD[kind] });
    }
    if (record.byRank > by.rank) return this.#fail("forbidden", "outranked", { name: shown });
    this.#count(kind === "ban" ? "unban" : "unmute", by, shown, "");
    const lifted: [string, undefined][] = [[key, undefined]];
    if (record.name !== undefined) {
      const linked = nameKey(record.name);
      for (const [other, held] of records) {
        if (held.kind === kind && held.name === undefined && held.for === linked) {
          lifted.push([other, undefined]);
        }
      }
    }
    const name = record.name ?? record.address ?? shown;
    return this.#save({
      records: lifted,
      done: kind === "ban" ? `${name} is no longer banned` : `${name} may speak again`,
    });
  }

  /** Changes a room's topic or slow mode; everyone in it hears of it. */
  setRoom(by: Actor, room: string, change: { topic?: string; slow?: number }): Settled<Outcome> {
    const key = nameKey(room);
    const current = this.settings.current(room);
    const record: RoomRecord = {
      kind: "room",
      room,
      topic: change.topic === undefined
        ? current?.topic ?? ""
        : cleanLine(change.topic, MAX_TOPIC_LENGTH),
      slow: change.slow ?? current?.slow ?? 0,
      by: by.name,
      at: this.#options.now(),
    };
    this.#count(change.topic === undefined ? "slow" : "topic", by, room, "");
    return this.#save({
      records: [[`room:${key}`, record]],
      done: `the settings of ${room} are saved`,
    });
  }

  // ---- what the broker says ----

  /** A record changed (here or elsewhere): the users it concerns here are told, or removed. */
  recordChanged(key: string, record: ModerationRecord | undefined): void {
    if (key.startsWith("room:")) return this.settings.changed(key.slice(5), record);
    const previous = this.#holds.changed(key, record);
    // A name's hold lifted: so are the addresses held with it, here and wherever they are.
    if (record === undefined && previous?.name !== undefined) this.#liftLinked(previous);
    if (record === undefined || record.kind === "room") {
      // The users a lifted mute held may speak again (those of a linked address heard of the name).
      if (previous?.kind === "mute" && previous.for === undefined) {
        const notice = this.#options.events.system("unmuted", {});
        for (const user of this.#heldHere(previous)) user.sink.send(notice);
      }
      return;
    }
    if (record.until <= this.#options.now()) return;
    const held = this.#heldHere(record);
    if (record.name !== undefined && this.#options.byAddress) this.#holdAddresses(record, held);
    if (record.kind === "mute") {
      // An address held with a name: its user hears once, of the name.
      if (record.for !== undefined) return;
      const seconds = (record.until - this.#options.now()) / 1000;
      const { by, reason } = record;
      const notice = this.#options.events.system("muted", {
        duration: formatDuration(seconds),
        by,
        reason,
      });
      for (const user of held) user.sink.send(notice);
      return;
    }
    const removal: Removal = { notice: "banned", by: record.by, reason: record.reason };
    for (const user of held) this.#options.remove(user, removal);
  }

  /** Another instance's moderator removes a local user. */
  deliverKick(note: KickNote): KickResult {
    const user = this.#options.users.find(note.name);
    if (user === undefined) return "not_found";
    if (rank(user.roles) >= note.byRank) {
      log.warning("Refused {by}'s kick of {name}, who outranks them", {
        by: note.by,
        name: note.name,
      });
      return "outranked";
    }
    this.#options.remove(user, { notice: note.notice, by: note.by, reason: note.reason });
    return "done";
  }

  /** Deletes the bans and mutes that have run out (unless decided again meanwhile). */
  sweep(): void {
    const now = this.#options.now();
    const { records } = this.#options.broker;
    for (const [key, record] of records.all()) {
      if (record.kind === "room" || record.until > now) continue;
      Promise.resolve(records.removeExpired(key, record.at)).catch((error) => {
        log.warning("Cannot delete an expired record: {error}", { error });
      });
    }
    this.settings.sweep();
  }

  // ---- inside ----

  #readTarget(text: string): Target | TargetRefusal {
    return readTarget(text, { find: this.#options.holderOf, problemOf: this.#options.problemOf });
  }

  #targetRefused(refusal: TargetRefusal): Outcome {
    if (refusal.problem === "unknown") {
      return this.#fail("user_not_found", "target_unknown", { target: refusal.target });
    }
    return this.#fail("bad_request", "target_invalid", {
      target: refusal.target,
      reason: refusal.reason,
    });
  }

  #kickFailed(result: Exclude<KickResult, "done">, name: string): Outcome {
    switch (result) {
      case "outranked":
        return this.#fail("forbidden", "outranked", { name });
      case "not_found":
        return this.#fail("user_not_found", "no_such_user", { name });
      case "unavailable":
        return this.#fail("unavailable", "not_saved", {});
    }
  }

  /** The local users a hold concerns: its name's holder, or those of its network. */
  #heldHere(record: HoldRecord<"ban" | "mute">): User[] {
    const held: User[] = [];
    const named = record.name === undefined ? undefined : this.#options.users.find(record.name);
    for (const user of this.#options.users.all()) {
      const userRank = rank(user.roles);
      if (userRank >= record.byRank) continue;
      if (user === named) {
        held.push(user);
      } else if (record.address !== undefined && userRank === 0 && user.address !== undefined) {
        // Moderators sharing a held address (the one who held it, say) are not held by it.
        if (networkHolds(record.address, user.address)) held.push(user);
      }
    }
    return held;
  }

  /** Open mode: a held name's users here are held by address too, lifted with the name. */
  #holdAddresses(record: HoldRecord<"ban" | "mute">, held: readonly User[]): void {
    const name = record.name!;
    const { records } = this.#options.broker;
    for (const user of held) {
      if (user.addressKey === undefined || nameKey(user.name) !== nameKey(name)) continue;
      const address: HoldRecord<typeof record.kind> = {
        ...record,
        name: undefined,
        address: user.addressKey,
        for: nameKey(name),
      };
      Promise.resolve(records.save(recordKey(address), address)).then((saved) => {
        if (!saved) return log.error("Cannot hold the address of {name}", { name });
        // Lifted while this was saved: the address goes with it.
        const still = records.all().get(recordKey(record));
        if (still?.kind !== record.kind || still.at !== record.at) this.#liftLinked(record);
      }).catch((error) => log.error("Cannot hold the address of {name}: {error}", { name, error }));
    }
  }

  /** Lifts the addresses held with a name's hold (wherever they were saved). */
  #liftLinked(record: HoldRecord<"ban" | "mute">): void {
    if (record.name === undefined) return;
    const linked = nameKey(record.name);
    const { records } = this.#options.broker;
    for (const [key, held] of records.all()) {
      if (held.kind !== record.kind || held.for !== linked) continue;
      Promise.resolve(records.save(key, undefined)).catch((error) => {
        log.warning("Cannot lift the address held with {name}: {error}", { name: linked, error });
      });
    }
  }

  /** Saves the records, in order; done when all are. */
  #save(change: {
    records: readonly (readonly [string, ModerationRecord | undefined])[];
    done: string;
  }): Settled<Outcome> {
    const { broker } = this.#options;
    const { records, done } = change;
    const saved = Promise.all(records.map(([key, record]) => broker.records.save(key, record)));
    return saved.then((results): Outcome =>
      results.every(Boolean) ? { ok: true, done } : this.#fail("unavailable", "not_saved", {})
    );
  }

  #fail<K extends MessageKey>(code: ErrorCode, key: K, values: MessageValues<K>): Outcome {
    return { ok: false, error: this.#options.events.error(code, key, values) };
  }

  #count(action: ModerationAction, by: Actor, target: string, reason: string): void {
    this.#options.metrics.moderationActions.inc(action);
    log.info("Moderation: {by} {action} {target} ({reason})", {
      by: by.name,
      action,
      target,
      reason: reason === "" ? "-" : reason,
    });
  }
}
