/**
 * The look-alike guards of the names one instance holds: a name's entry in
 * the names bucket is under its name key only, so each of its look-alike
 * keys gets a guard (`~` and the key), taken with create-if-absent too. A
 * claim one of whose guards another live name holds is given back, so
 * racing look-alikes (`AIice` on one instance, `Alice` on another) cannot
 * both be granted. Guards are kept by bucket key and by the name key of the
 * name they guard, so letting go of a name costs its own guards only.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import { comparisonKeys, nameKey } from "../../text/names.ts";
import { bucketKey, decodeBucketKey } from "./wire.ts";
import { deleteIfOurs, TakenElsewhere, writeOver } from "./bucket_writes.ts";

const log = getLogger(["chat", "cluster"]);

/** How long a claim (of a name or a guard) waits for NATS to come back... */
export const CLAIM_WAIT_MS = 30_000;
/** ...and how many times it tries. */
export const MAX_CLAIM_TRIES = 40;

/** The bucket keys of the guards of `name`: its comparison keys after the name key. */
export function guardKeys(name: string): string[] {
  return comparisonKeys(name).slice(1).map((key) => bucketKey(`~${key.slice(2)}`));
}

/** Whether a bucket key is a look-alike guard's rather than a name's. */
export function isGuard(key: string): boolean {
  try {
    return decodeBucketKey(key).startsWith("~");
  } catch {
    return false;
  }
}

/** What {@linkcode Guards} works with. */
export interface GuardsOptions {
  readonly instance: string;
  readonly bucket: KV;
  readonly bucketName: string;
  /** Resolves when NATS is back, while it is away. */
  readonly back: () => Promise<void>;
  /** Whether this instance still holds the name with this name key. */
  readonly holds: (key: string) => boolean;
  /** Whether the name entry `data` is held by `instance`. */
  readonly isEntryOf: (data: string, instance: string) => boolean;
  /** A value in the bucket could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
}

/** The guards one instance holds. */
export class Guards {
  readonly #options: GuardsOptions;
  /** Each guard held, by bucket key, with the name it guards... */
  readonly #names = new Map<string, string>();
  /** ...and the guards of each name, by name key. */
  readonly #byName = new Map<string, Set<string>>();
  /** The revision of our last write of each guard, so a renewal never lands on another's. */
  readonly #revisions = new Map<string, number>();

  constructor(options: GuardsOptions) {
    this.#options = options;
  }

  /** Whether every guard of `name` is held here. */
  holdsAll(name: string): boolean {
    return guardKeys(name).every((key) => this.#names.has(key));
  }

  /** Takes the guards of `name` not held here yet; false when another live name holds one. */
  async claim(name: string): Promise<boolean> {
    const missing = guardKeys(name).filter((key) => !this.#names.has(key));
    const taken = await Promise.all(missing.map((key) => this.#claim(name, key)));
    return taken.every(Boolean);
  }

  /** Records the guards of `name` as held here (a session moved here) and writes them. */
  async record(name: string): Promise<void> {
    const value = this.#value(name);
    await Promise.all(
      guardKeys(name).map(async (key) => {
        this.#add(key, name);
        this.#revisions.set(key, await this.#options.bucket.put(key, value));
      }),
    );
  }

  /**
   * Forgets the guards of the name with key `key` (spelled any way) but
   * those in `except`; `release` deletes them from the bucket too.
   */
  drop(key: string, release: boolean, except: readonly string[] = []): void {
    const guards = this.#byName.get(key);
    if (guards === undefined) return;
    for (const guard of [...guards]) {
      if (except.includes(guard)) continue;
      this.#remove(guard);
      if (release) void this.#release(guard);
    }
  }

  /** Deletes guard `key` while it is still this instance's and not held here again. */
  async #release(key: string): Promise<void> {
    const ours = (data: string) =>
      !this.#names.has(key) && this.#read(data)?.instance === this.#options.instance;
    await deleteIfOurs(this.#options.bucket, key, ours).catch((error) => {
      log.debug("Did not release the guard {key}: {error}", { key, error });
    });
  }

  /**
   * Writes every guard again, over our own last write only: one taken by
   * another instance meanwhile (held up on a stalled link, this renewal would
   * have landed on it) is let go here.
   */
  keepAlive(): void {
    const { bucket, instance } = this.#options;
    const ours = (data: string) => this.#read(data)?.instance === instance;
    for (const [key, name] of this.#names) {
      const revision = this.#revisions.get(key) ?? 0;
      writeOver(bucket, key, this.#value(name), revision, ours).then((written) => {
        if (this.#names.get(key) === name) this.#revisions.set(key, written);
      }, (error) => {
        log.warning("Cannot keep the guard of {name} alive: {error}", { name, error });
        if (error instanceof TakenElsewhere && this.#names.get(key) === name) {
          this.#remove(key);
        }
      });
    }
  }

  /** Deletes every guard (the instance is leaving the cluster). */
  async releaseAll(): Promise<void> {
    const keys = [...this.#names.keys()];
    this.#names.clear();
    this.#byName.clear();
    await Promise.allSettled(keys.map((key) => this.#release(key)));
  }

  /**
   * Takes the guard `key` of `name`: free, ours, or left by a name that is
   * not held any more (its instance died, say). One taken for a name let go
   * meanwhile (a rename came first) is given back.
   */
  async #claim(name: string, key: string): Promise<boolean> {
    const { bucket, instance } = this.#options;
    const value = this.#value(name);
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let tries = 1; tries <= MAX_CLAIM_TRIES && Date.now() <= deadline; tries++) {
      try {
        return this.#taken(name, key, await bucket.create(key, value));
      } catch {
        const current = await bucket.get(key).catch(() => undefined);
        if (current === undefined) {
          // NATS away: wait for it, as the name's own claim does.
          await Promise.race([
            this.#options.back(),
            new Promise((resolve) => setTimeout(resolve, 1000)),
          ]);
          continue;
        }
        if (current === null || current.operation !== "PUT") continue;
        const guarded = this.#read(current.string());
        if (guarded !== undefined && guarded.instance !== instance) {
          const entry = await bucket.get(bucketKey(nameKey(guarded.name))).catch(() => undefined);
          if (entry === undefined) continue;
          const alive = entry !== null && entry.operation === "PUT" &&
            this.#options.isEntryOf(entry.string(), guarded.instance);
          if (alive) return false;
        }
        try {
          // Ours already, or left by a name nobody holds any more.
          return this.#taken(
            name,
            key,
            await bucket.put(key, value, { previousSeq: current.revision }),
          );
        } catch {
          // Changed meanwhile: look again.
        }
      }
    }
    log.warning("Cannot take the look-alike guard of {name}", { name });
    return false;
  }

  /**
   * Records a guard just written (at `revision`), unless its name was let go
   * meanwhile: then it is deleted, unless written again since (a handover).
   */
  #taken(name: string, key: string, revision: number): boolean {
    if (this.#options.holds(nameKey(name))) {
      this.#add(key, name);
      this.#revisions.set(key, revision);
      return true;
    }
    this.#options.bucket.delete(key, { previousSeq: revision }).catch(() => {});
    return false;
  }

  #add(key: string, name: string): void {
    this.#remove(key);
    this.#names.set(key, name);
    const byName = nameKey(name);
    let guards = this.#byName.get(byName);
    if (guards === undefined) this.#byName.set(byName, guards = new Set());
    guards.add(key);
  }

  #remove(key: string): void {
    const name = this.#names.get(key);
    if (name === undefined) return;
    this.#names.delete(key);
    this.#revisions.delete(key);
    const byName = nameKey(name);
    const guards = this.#byName.get(byName);
    guards?.delete(key);
    if (guards?.size === 0) this.#byName.delete(byName);
  }

  #value(name: string): string {
    return JSON.stringify({ name, instance: this.#options.instance });
  }

  /** What a guard says: the name it guards and the instance holding it. */
  #read(data: string): { name: string; instance: string } | undefined {
    try {
      const { name, instance } = JSON.parse(data);
      if (typeof name === "string" && typeof instance === "string") return { name, instance };
    } catch {
      // Not a guard: it guards nothing.
    }
    this.#options.malformed(`$KV.${this.#options.bucketName}`, "a guard is not {name, instance}");
    return undefined;
  }
}
