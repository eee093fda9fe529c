/**
 * The instances of a cluster, as each announces itself in the names bucket
 * (`@` and its id, written again at each heartbeat, as its names are): a
 * heartbeat counts only from an announced instance.
 *
 * @module
 */

import type { KV } from "@nats-io/kv";
import { bucketKey, decodeBucketKey } from "./wire.ts";

/** The bucket key where `instance` announces itself. */
function instanceKey(instance: string): string {
  return bucketKey(`@${instance}`);
}

/** The instance a bucket key announces, if it is such a key (names never start with `@`). */
export function announcedBy(key: string): string | undefined {
  try {
    const decoded = decodeBucketKey(key);
    return decoded.startsWith("@") ? decoded.slice(1) : undefined;
  } catch {
    return undefined;
  }
}

/** The other instances that announced themselves, and this one's announcement. */
export class Instances {
  readonly #bucket: KV;
  readonly #self: string;
  /** How long an announcement lasts unless written again, in milliseconds. */
  readonly #lapse: number;
  /** When each other instance last wrote its announcement, as far as we heard. */
  readonly #writtenAt = new Map<string, number>();

  constructor(bucket: KV, self: string, lapse: number) {
    this.#bucket = bucket;
    this.#self = self;
    this.#lapse = lapse;
  }

  /** Announces this instance, before its first heartbeat. */
  async register(): Promise<void> {
    await this.#bucket.put(instanceKey(this.#self), JSON.stringify({ instance: this.#self }));
  }

  /** Withdraws the announcement: this instance is leaving. */
  release(): Promise<unknown> {
    return this.#bucket.delete(instanceKey(this.#self));
  }

  /** What the bucket's watch says of `instance`'s announcement. */
  heard(instance: string, present: boolean): void {
    if (instance === this.#self) return;
    if (present) this.#writtenAt.set(instance, Date.now());
    else this.#writtenAt.delete(instance);
  }

  /** Whether `instance`'s announcement was heard written within its lifetime. */
  fresh(instance: string): boolean {
    return Date.now() - (this.#writtenAt.get(instance) ?? -Infinity) <= this.#lapse;
  }

  /** Forgets an instance that is gone. */
  forget(instance: string): void {
    this.#writtenAt.delete(instance);
  }

  /**
   * Whether `instance` is announced now: its announcement written within its
   * lifetime, as heard from the bucket, or (for one whose last write has not
   * reached us yet) found there now. A gone instance's announcement lapses,
   * so a heartbeat under its id is not believed.
   */
  async announced(instance: string): Promise<boolean> {
    const now = Date.now();
    if (this.fresh(instance)) return true;
    const entry = await this.#bucket.get(instanceKey(instance)).catch(() => null);
    if (entry === null || entry.operation !== "PUT") return false;
    if (now - entry.created.getTime() > this.#lapse) return false;
    this.#writtenAt.set(instance, entry.created.getTime());
    return true;
  }
}
