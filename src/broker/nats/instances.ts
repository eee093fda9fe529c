/**
 * The instances of a cluster, as each announces itself in the names bucket
 * (`@` and its id, written again at each heartbeat, as its names are): a
 * heartbeat counts only from an announced instance.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import { bucketKey, decodeBucketKey } from "./wire.ts";

const log = getLogger(["chat", "cluster"]);

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
  readonly #known = new Set<string>();

  constructor(bucket: KV, self: string) {
    this.#bucket = bucket;
    this.#self = self;
  }

  /** Announces this instance, before its first heartbeat. */
  async register(): Promise<void> {
    await this.#bucket.put(instanceKey(this.#self), JSON.stringify({ instance: this.#self }));
  }

  /** Writes the announcement again, before the bucket's TTL drops it. */
  keepAlive(): void {
    this.register().catch((error) =>
      log.warning("Cannot announce this instance: {error}", { error })
    );
  }

  /** Withdraws the announcement: this instance is leaving. */
  release(): Promise<unknown> {
    return this.#bucket.delete(instanceKey(this.#self));
  }

  /** What the bucket's watch says of `instance`'s announcement. */
  heard(instance: string, present: boolean): void {
    if (instance === this.#self) return;
    if (present) this.#known.add(instance);
    else this.#known.delete(instance);
  }

  /** Forgets an instance that is gone. */
  forget(instance: string): void {
    this.#known.delete(instance);
  }

  /**
   * Whether `instance` announced itself: known from the bucket, or (for one
   * whose announcement has not reached us yet) found there now.
   */
  async announced(instance: string): Promise<boolean> {
    if (this.#known.has(instance)) return true;
    const entry = await this.#bucket.get(instanceKey(instance)).catch(() => null);
    if (entry === null || entry.operation !== "PUT") return false;
    this.#known.add(instance);
    return true;
  }
}
