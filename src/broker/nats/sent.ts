/**
 * The batches an instance sent to the stream, kept until they come back to
 * it through its rooms' feeds: it knows what it wrote, and delivers that
 * without decoding it again, when the stream message is the very one sent.
 *
 * @module
 */

import type { RoomBatch } from "./wire.ts";

/**
 * Batches kept, at most, and their bytes (one of a room nobody here follows
 * is never read back; during an outage, none is).
 */
const MAX_KEPT = 1024;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;

/** A batch as sent. */
interface Kept {
  readonly id: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly batch: RoomBatch;
}

/** Batches sent and not yet read back, by stream message id, the oldest forgotten first. */
export class SentBatches {
  readonly #kept = new Map<string, Kept>();
  #bytes = 0;

  /** Keeps `batch`, sent as `payload` on `subject` under the stream message id `id`. */
  keep(id: string, subject: string, payload: Uint8Array, batch: RoomBatch): void {
    this.#kept.set(id, { id, subject, payload, batch });
    this.#bytes += payload.length;
    for (const oldest of this.#kept.values()) {
      if (this.#kept.size <= MAX_KEPT && this.#bytes <= MAX_KEPT_BYTES) break;
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
    return kept.subject === subject && sameBytes(kept.payload, data) ? kept.batch : undefined;
  }

  #forget(kept: Kept): void {
    this.#kept.delete(kept.id);
    this.#bytes -= kept.payload.length;
  }
}

/** Whether `a` and `b` hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}
