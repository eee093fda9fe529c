/**
 * The batches an instance sent to the stream, kept until they come back to
 * it through its rooms' feeds: it knows what it wrote, and delivers that
 * without decoding it again, when the stream message is the very one sent.
 *
 * @module
 */

import type { RoomBatch } from "./batch.ts";

/**
 * Batches kept, at most, and their JSON's UTF-16 units (one of a room nobody here follows
 * is never read back; during an outage, none is).
 */
const MAX_KEPT = 1024;
const MAX_KEPT_UNITS = 8 * 1024 * 1024;

/** A batch as sent: its JSON, before it was encoded in UTF-8. */
interface Kept {
  readonly id: string;
  readonly subject: string;
  readonly json: string;
  /** Its length in UTF-8. */
  readonly bytes: number;
  readonly batch: RoomBatch;
}

/** Decoding and comparing strings is native work: ten times as fast as a loop over bytes. */
const decoder = new TextDecoder();

/** Batches sent and not yet read back, by stream message id, the oldest forgotten first. */
export class SentBatches {
  readonly #kept = new Map<string, Kept>();
  #units = 0;

  /** Keeps `batch`, sent as `json` (`bytes` in UTF-8) on `subject` under the message id `id`. */
  keep(id: string, subject: string, json: string, bytes: number, batch: RoomBatch): void {
    this.#kept.set(id, { id, subject, json, bytes, batch });
    this.#units += json.length;
    for (const oldest of this.#kept.values()) {
      if (this.#kept.size <= MAX_KEPT && this.#units <= MAX_KEPT_UNITS) break;
      this.#forget(oldest);
    }
  }

  /**
   * The batch sent under `id`, once, if still kept and the stream message
   * read (its `subject` and `data`) is exactly what was sent.
   */
  take(id: string | undefined, subject: string, data: Uint8Array): RoomBatch | undefined {
    const kept = id === undefined ? undefined : this.#kept.get(id);
    if (kept === undefined) return undefined;
    this.#forget(kept);
    // A length that differs tells at once; one that does not is checked to the last unit.
    return kept.subject === subject && data.length === kept.bytes &&
        decoder.decode(data) === kept.json
      ? kept.batch
      : undefined;
  }

  #forget(kept: Kept): void {
    this.#kept.delete(kept.id);
    this.#units -= kept.json.length;
  }
}
