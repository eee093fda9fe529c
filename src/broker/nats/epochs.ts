/**
 * Each room's epoch in a cluster, kept in a KV bucket so all instances
 * number a room's log in the same one: the first instance to create a
 * room's entry wins, and the others learn it by watching the bucket.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import { logKey, randomId } from "../types.ts";
import { DecodeError } from "../decode.ts";
import { bucketKey, decodeBucketKey } from "./wire.ts";

const log = getLogger(["chat", "cluster"]);

/** What {@linkcode ClusterEpochs} works with. */
export interface ClusterEpochsOptions {
  /** The rooms bucket, and its name (for the logs). */
  readonly bucket: KV;
  readonly bucketName: string;
  /** An entry could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
}

/** The rooms' epochs, as the cluster agreed on them. */
export class ClusterEpochs {
  readonly #options: ClusterEpochsOptions;
  /** Each room's epoch, by room key. */
  readonly #epochs = new Map<string, string>();

  constructor(options: ClusterEpochsOptions) {
    this.#options = options;
  }

  /** The room's epoch: the one agreed on, or a new one proposed now. */
  of(room: string): string {
    const key = logKey(room);
    const known = this.#epochs.get(key);
    if (known !== undefined) return known;
    const epoch = randomId();
    this.#epochs.set(key, epoch);
    const { bucket } = this.#options;
    bucket.create(bucketKey(key), epoch).catch(async (error) => {
      const current = await bucket.get(bucketKey(key)).catch(() => null);
      if (current !== null && current.operation === "PUT") {
        this.#epochs.set(key, current.string());
      } else {
        log.warning("Cannot record the epoch of room {room}: {error}", { room, error });
      }
    });
    return epoch;
  }

  /** Forgets a removed room's epoch: a room of that name later starts a new one. */
  forget(room: string): void {
    const key = logKey(room);
    this.#epochs.delete(key);
    this.#options.bucket.delete(bucketKey(key)).catch((error) => {
      log.warning("Cannot forget the epoch of room {room}: {error}", { room, error });
    });
  }

  /** Follows the bucket: every room's epoch now, then every change. */
  async watch(): Promise<void> {
    const { bucket, bucketName, malformed } = this.#options;
    const watch = await bucket.watch();
    (async () => {
      for await (const entry of watch) {
        try {
          const key = decodeBucketKey(entry.key);
          if (entry.operation !== "PUT") continue;
          const epoch = entry.string();
          if (!/^[0-9a-f]{8}$/.test(epoch)) throw new DecodeError("an epoch is not 8 hex digits");
          this.#epochs.set(key, epoch);
        } catch (error) {
          malformed(`$KV.${bucketName}.${entry.key}`, error);
        }
      }
    })().catch((error) =>
      log.error("Stopped following {what}: {error}", { what: "the rooms' epochs", error })
    );
  }
}
