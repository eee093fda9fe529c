/**
 * Bans, mutes and room settings in a cluster: one KV bucket, written by the
 * instance where a moderator acts and watched by every instance, which
 * applies each change as it arrives (this one's own included).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import type { ModerationRecord } from "../types.ts";
import { bucketKey, decodeBucketKey, readModerationRecord } from "./wire.ts";

const log = getLogger(["chat", "cluster"]);

/** What {@linkcode ClusterRecords} works with. */
export interface ClusterRecordsOptions {
  /** The moderation bucket, and its name (for the logs). */
  readonly bucket: KV;
  readonly bucketName: string;
  /** A record was written or removed, by any instance. */
  readonly changed: (key: string, record: ModerationRecord | undefined) => void;
  /** An entry could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
}

/** The moderation records of a cluster, as the bucket holds them. */
export class ClusterRecords {
  readonly #options: ClusterRecordsOptions;
  readonly #records = new Map<string, ModerationRecord>();

  constructor(options: ClusterRecordsOptions) {
    this.#options = options;
  }

  /** Saved in the bucket (removed, for `undefined`); false when NATS refused it. */
  async save(key: string, record: ModerationRecord | undefined): Promise<boolean> {
    const { bucket } = this.#options;
    try {
      if (record === undefined) await bucket.delete(bucketKey(key));
      else await bucket.put(bucketKey(key), JSON.stringify(record));
      return true;
    } catch (error) {
      log.error("Cannot save a moderation record: {error}", { error });
      return false;
    }
  }

  all(): ReadonlyMap<string, ModerationRecord> {
    return this.#records;
  }

  /** Deleted only at the revision that holds the expired record: a newer one stays. */
  async removeExpired(key: string, at: number): Promise<void> {
    const { bucket } = this.#options;
    const entry = await bucket.get(bucketKey(key));
    if (entry === null || entry.operation !== "PUT") return;
    if (readModerationRecord(entry.string()).at !== at) return;
    await bucket.delete(bucketKey(key), { previousSeq: entry.revision });
  }

  /** Follows the bucket: its records now, then every change. */
  async watch(): Promise<void> {
    const watch = await this.#options.bucket.watch();
    (async () => {
      for await (const entry of watch) {
        try {
          const key = decodeBucketKey(entry.key);
          if (entry.operation !== "PUT") {
            this.#records.delete(key);
            this.#options.changed(key, undefined);
            continue;
          }
          const record = readModerationRecord(entry.string());
          this.#records.set(key, record);
          this.#options.changed(key, record);
        } catch (error) {
          this.#options.malformed(`$KV.${this.#options.bucketName}.${entry.key}`, error);
        }
      }
    })().catch((error) =>
      log.error("Stopped following {what}: {error}", { what: "the moderation bucket", error })
    );
  }
}
