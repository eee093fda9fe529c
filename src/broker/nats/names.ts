/**
 * Who holds which name in a cluster, kept in a KV bucket: a name is taken
 * with create-if-absent, so two instances can never both grant it; each
 * entry says where its user is, is kept alive by its instance's heartbeat
 * and expires after `name_ttl`. Every instance watches the bucket, which
 * tells it who is where.
 *
 * Two names are one when any comparison key matches, and the entry's key
 * is only the first: so a name also takes a guard under each look-alike key
 * (see `guards.ts`), and racing look-alikes cannot both be granted.
 *
 * Each instance also announces itself in the bucket (see `instances.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import { delay } from "@std/async/delay";
import { nameKey } from "../../text/names.ts";
import type { LocalHolder, RemoteUser } from "../types.ts";
import { bucketKey, type NameEntry, readNameEntry } from "./wire.ts";
import { deleteIfOurs, writeOver } from "./bucket_writes.ts";
import { CLAIM_WAIT_MS, guardKeys, Guards, isGuard, MAX_CLAIM_TRIES } from "./guards.ts";
import { announcedBy, Instances } from "./instances.ts";
import { type RemoteEntry, RemoteNames } from "./remote_names.ts";

const log = getLogger(["chat", "cluster"]);

/** How long a claim waits before it asks again, after a request failed with NATS there. */
const CLAIM_RETRY_MS = 100;

/** What {@linkcode ClusterNames} works with. */
export interface ClusterNamesOptions {
  /** This instance's id. */
  readonly instance: string;
  /** The names bucket, and its name (for the logs). */
  readonly bucket: KV;
  readonly bucketName: string;
  /** Resolves when NATS is back, while it is away. */
  readonly back: () => Promise<void>;
  /** Another instance took over a name this one held. */
  readonly lost: (name: string) => void;
  /** Another instance showed signs of life. */
  readonly seen: (instance: string) => void;
  /**
   * How long an entry lasts unless written again, in milliseconds (each is
   * written at every heartbeat of its instance): `name_ttl` and a heartbeat.
   */
  readonly lapse: number;
  /** An entry could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
}

/** The cluster's names, as one instance holds and sees them. */
export class ClusterNames {
  readonly #options: ClusterNamesOptions;
  /** Users of other instances. */
  readonly #remote = new RemoteNames();
  /** Names this instance holds, by name key. */
  readonly #local = new Map<string, NameEntry>();
  /** The revision of our last write of each of them, so a write never lands on another's. */
  readonly #revisions = new Map<string, number>();
  /**
   * When our last write of each of them that NATS took was sent (on the
   * monotonic clock, which no clock change moves): the start of its lease.
   */
  readonly #renewed = new Map<string, number>();
  /** The keys of names let go here, until their entries are seen gone from the bucket. */
  readonly #stale = new Set<string>();
  /** The look-alike guards of the names this instance holds. */
  readonly #guards: Guards;
  /** The other instances that announced themselves. */
  readonly instances: Instances;

  constructor(options: ClusterNamesOptions) {
    this.#options = options;
    this.#guards = new Guards({
      ...options,
      holds: (key) => this.#local.has(key),
      isEntryOf: (data, instance) => this.#isEntryOf(data, instance),
    });
    this.instances = new Instances(options.bucket, options.instance, options.lapse);
  }

  /** The user of another instance who holds `name` (or a look-alike of it). */
  find(name: string): RemoteUser | undefined {
    return this.#remote.get(bucketKey(nameKey(name))) ?? this.#remote.lookAlike(name);
  }

  /** The entry of `name` when another instance holds exactly it. */
  holderOf(name: string): RemoteEntry | undefined {
    return this.#remote.get(bucketKey(nameKey(name)));
  }

  remoteUsers(): Iterable<RemoteEntry> {
    return this.#remote.all();
  }

  remoteMembers(room: string): Iterable<RemoteUser> {
    return this.#remote.inRoom(room);
  }

  /**
   * Takes `name` with create-if-absent, then its look-alike guard; a name
   * whose guard another live name holds is given back. While NATS is away,
   * the claim waits for it (up to a limit).
   */
  async claim(name: string, holder: LocalHolder): Promise<boolean> {
    if (!await this.#claimEntry(name, holder)) return false;
    if (await this.#guards.claim(name)) return true;
    log.info("Refused the name {name}: a look-alike is held elsewhere", { name });
    this.withdraw(name);
    return false;
  }

  async #claimEntry(name: string, holder: LocalHolder): Promise<boolean> {
    const key = nameKey(name);
    const entry = this.#entry(name, holder);
    const { bucket } = this.#options;
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let tries = 1;; tries++) {
      // While NATS is away, a request would wait for its own timeout, after NATS is back.
      await this.#backBy(deadline);
      let sent = performance.now();
      try {
        this.#held(key, entry, await bucket.create(bucketKey(key), JSON.stringify(entry)), sent);
        return true;
      } catch (error) {
        const current = await bucket.get(bucketKey(key)).catch(() => undefined);
        if (current !== undefined && current !== null && current.operation === "PUT") {
          // Ours already (a release still on its way, or a name let go here), or someone else's.
          if (this.#local.has(key) || !this.#isOwnEntry(current.string())) return false;
          sent = performance.now();
          // Over that very entry only: released and taken elsewhere meanwhile, it is not ours.
          const written = await bucket.update(
            bucketKey(key),
            JSON.stringify(entry),
            current.revision,
          )
            .catch(() => undefined);
          if (written !== undefined) {
            this.#held(key, entry, written, sent);
            return true;
          }
        }
        if (Date.now() > deadline || tries >= MAX_CLAIM_TRIES) {
          log.warning("Cannot claim the name {name}: {error}", { name, error });
          return false;
        }
        // Changed meanwhile, or a request that failed with NATS there: a moment, then again.
        if (current === undefined || current?.operation === "PUT") await delay(CLAIM_RETRY_MS);
      }
    }
  }

  /** Resolves when NATS is there, or at `deadline`. */
  async #backBy(deadline: number): Promise<void> {
    const timer = new AbortController();
    const late = delay(Math.max(0, deadline - Date.now()), { signal: timer.signal }).catch(
      () => {},
    );
    await Promise.race([this.#options.back(), late]);
    timer.abort();
  }

  /** Records a name held here, written at `revision` (if known yet) by a write sent at `sent`. */
  #held(key: string, entry: NameEntry, revision: number | undefined, sent: number): void {
    this.#local.set(key, entry);
    if (revision === undefined) this.#revisions.delete(key);
    else this.#revisions.set(key, revision);
    this.#renewed.set(key, sent);
    this.#stale.delete(key);
  }

  /**
   * Records where the holder of `name`, granted here, is now, and their
   * rank. A new spelling of the same name (`mallory` now `Mallory`) takes
   * its own look-alike guard, and the old spelling's goes.
   */
  announce(name: string, holder: LocalHolder): void {
    const key = nameKey(name);
    const entry = this.#entry(name, holder);
    const held = this.#local.get(key);
    if (held !== undefined && !this.#guards.holdsAll(name)) {
      this.#guards.claim(name).then((taken) => {
        // Only if this spelling is still the one held: a quicker rename came after.
        if (taken && this.#local.get(key)?.name === name) {
          this.#guards.drop(key, true, guardKeys(name));
        }
      });
    }
    if (
      held !== undefined && held.name === name && held.room === entry.room &&
      held.userId === entry.userId && held.rank === entry.rank
    ) return;
    this.#local.set(key, entry);
    this.#write(key, entry);
  }

  /**
   * Writes our entry of `key` over our own last write only: a name that
   * expired while NATS was away and was taken elsewhere meanwhile is lost
   * here (its user renamed), never taken back from its new holder.
   */
  #write(key: string, entry: NameEntry, again = false): void {
    const { bucket } = this.#options;
    const data = JSON.stringify(entry);
    const revision = this.#revisions.get(key);
    const sent = performance.now();
    const write = revision === undefined
      ? bucket.create(bucketKey(key), data)
      : bucket.update(bucketKey(key), data, revision);
    write.then((next) => {
      if (!this.#local.has(key)) return;
      this.#revisions.set(key, next);
      this.#renewed.set(key, Math.max(this.#renewed.get(key) ?? 0, sent));
    }, async (error) => {
      const current = this.#local.get(key) === entry
        ? await bucket.get(bucketKey(key)).catch(() => undefined)
        : undefined;
      // Changed here meanwhile, or NATS away: the next write or heartbeat tries again.
      if (current === undefined || this.#local.get(key) !== entry) return;
      if (current !== null && current.operation === "PUT" && !this.#isOwnEntry(current.string())) {
        log.warning("The name {name} was taken elsewhere while its entry here lapsed", {
          name: entry.name,
        });
        this.#forget(key);
        this.#options.lost(entry.name);
        return;
      }
      // Ours (written meanwhile), or lapsed and free: write it again from there.
      if (current !== null && current.operation === "PUT") {
        this.#revisions.set(key, current.revision);
      } else this.#revisions.delete(key);
      if (!again) this.#write(key, entry, true);
      else log.warning("Cannot keep the name {name}: {error}", { name: entry.name, error });
    });
  }

  /** Forgets a name this instance held, its revision and its guards (which are not ours to delete). */
  #forget(key: string): void {
    this.#local.delete(key);
    this.#revisions.delete(key);
    this.#renewed.delete(key);
    this.#guards.drop(key, false);
  }

  /**
   * Lets go of every name whose last write NATS took was sent before
   * `before` (by `performance.now()`): unless written again since, its entry may have lapsed in the
   * bucket or been released by the others, who took this instance for gone,
   * and the name may be someone else's now. Returns their entries. The
   * entries left in the bucket are deleted once NATS takes it, unless
   * written since.
   */
  lapse(before: number): NameEntry[] {
    const lapsed: NameEntry[] = [];
    for (const [key, entry] of this.#local) {
      if ((this.#renewed.get(key) ?? 0) >= before) continue;
      lapsed.push(entry);
      this.#stale.add(key);
      this.#forget(key);
    }
    return lapsed;
  }

  /** Deletes the entries of names let go here that are still this instance's (see `#dropOwn`). */
  #dropStale(): void {
    for (const key of this.#stale) void this.#dropOwn(key);
  }

  /** Deletes the entry of a name let go here while it is still this instance's. */
  async #dropOwn(key: string): Promise<void> {
    const ours = (data: string) => !this.#local.has(key) && this.#isOwnEntry(data);
    try {
      if (await deleteIfOurs(this.#options.bucket, bucketKey(key), ours)) this.#stale.delete(key);
    } catch (error) {
      // NATS away, or written again meanwhile: the next heartbeat looks again.
      log.debug("Cannot delete the entry of {key} let go here: {error}", { key, error });
    }
  }

  /**
   * Records that a session handed over by `from` (its entry as last heard),
   * and its name, are here now, written over the old holder's entry only.
   * When it cannot be, the next heartbeat's write finds out whose it is.
   */
  async movedHere(name: string, holder: LocalHolder, from: RemoteEntry): Promise<void> {
    const key = nameKey(name);
    const entry = this.#entry(name, holder);
    // The handover came over NATS: the link carried just now.
    this.#held(key, entry, undefined, performance.now());
    const { bucket } = this.#options;
    const sent = performance.now();
    const theirs = (data: string) => this.#isEntryOf(data, from.instance);
    const write = writeOver(bucket, bucketKey(key), JSON.stringify(entry), from.revision, theirs);
    await Promise.all([
      write.then((revision) => {
        if (this.#local.get(key) !== entry) return;
        this.#revisions.set(key, revision);
        this.#renewed.set(key, sent);
      }),
      this.#guards.record(name),
    ]).catch((error) => {
      log.warning("Cannot record that {name} moved here: {error}", { name, error });
    });
  }

  /** Lets go of a name this instance held, and of its guards. */
  withdraw(name: string): void {
    const key = nameKey(name);
    if (!this.#local.delete(key)) return;
    this.#revisions.delete(key);
    this.#renewed.delete(key);
    this.#stale.add(key);
    void this.#dropOwn(key);
    this.#guards.drop(key, true);
  }

  /** Forgets a name whose session was handed to another instance (which now writes its entry). */
  handedOver(name: string): void {
    this.#forget(nameKey(name));
  }

  /** Writes this instance's entries, guards and announcement again, before the bucket's TTL drops them. */
  keepAlive(): void {
    for (const [key, entry] of this.#local) this.#write(key, entry);
    this.#guards.keepAlive();
    this.#dropStale();
  }

  /**
   * Forgets the other instances' entries that were not written again for
   * long: the bucket dropped them (without a word) as their instance stopped
   * keeping them alive, so their users are not there any more.
   */
  sweep(): void {
    // Twice the lapse: a gone instance is declared so (and its users said goodbye to) first.
    this.#remote.sweep(performance.now() - 2 * this.#options.lapse);
  }

  /** Nothing could be heard while NATS was away: every entry starts its count afresh. */
  forgive(): void {
    this.#remote.touchAll(performance.now());
  }

  /** Forgets the users of an instance that is gone, and returns them. */
  dropInstance(instance: string): RemoteEntry[] {
    this.instances.forget(instance);
    return this.#remote.dropInstance(instance);
  }

  /**
   * Deletes the entries of users of a gone instance, unless written again
   * since. Every survivor does, so most find the entry gone already (or
   * expired): that is expected, and not worth a warning.
   */
  release(users: readonly RemoteEntry[]): void {
    for (const user of users) {
      const key = bucketKey(nameKey(user.name));
      this.#options.bucket.delete(key, { previousSeq: user.revision }).catch((error) => {
        log.debug("Did not release the name {name}: {error}", { name: user.name, error });
      });
    }
  }

  /** Releases every name this instance holds (it is leaving the cluster). */
  async releaseAll(): Promise<void> {
    const keys = [...this.#local.keys(), ...this.#stale];
    this.#local.clear();
    this.#revisions.clear();
    this.#renewed.clear();
    await Promise.allSettled([
      ...keys.map((key) => this.#dropOwn(key)),
      this.#guards.releaseAll(),
      this.instances.release(),
    ]);
  }

  /** Follows the bucket: who holds which name, where, from now on. */
  async watch(): Promise<void> {
    const { bucket, instance } = this.#options;
    const watch = await bucket.watch();
    (async () => {
      for await (const entry of watch) {
        const announced = announcedBy(entry.key);
        if (announced !== undefined) {
          this.instances.heard(announced, entry.operation === "PUT");
          continue;
        }
        // Guards say nothing of who is where.
        if (isGuard(entry.key)) continue;
        if (entry.operation !== "PUT") {
          this.#remote.delete(entry.key);
          continue;
        }
        try {
          const user = readNameEntry(entry.string());
          if (user.instance === instance) {
            this.#remote.delete(entry.key);
            continue;
          }
          const key = nameKey(user.name);
          // A name we held was taken over by another instance's claim or handover.
          if (this.#local.has(key) && bucketKey(key) === entry.key) {
            this.#forget(key);
            this.#options.lost(user.name);
          }
          this.#remote.set(entry.key, { ...user, revision: entry.revision }, performance.now());
          this.#options.seen(user.instance);
        } catch (error) {
          this.#options.malformed(`$KV.${this.#options.bucketName}.${entry.key}`, error);
        }
      }
    })().catch((error) =>
      log.error("Stopped following {what}: {error}", { what: "the names bucket", error })
    );
  }

  #entry(name: string, holder: LocalHolder): NameEntry {
    const { userId, room, rank } = holder;
    return { name, room, instance: this.#options.instance, userId, rank };
  }

  #isOwnEntry(data: string): boolean {
    return this.#isEntryOf(data, this.#options.instance);
  }

  /** Whether a name entry is held by `instance`. */
  #isEntryOf(data: string, instance: string): boolean {
    try {
      return readNameEntry(data).instance === instance;
    } catch (error) {
      this.#options.malformed(`$KV.${this.#options.bucketName}`, error);
      return false;
    }
  }
}
