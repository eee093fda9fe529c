/**
 * What one server shares between its connections on the way out: each event
 * is encoded once for all its recipients, and v2 events queued during one
 * turn of the event loop leave as one frame per socket at the end of it.
 *
 * @module
 */

import type { ChatEvent } from "../vocabulary/events.ts";
import { joinV1Frame } from "../protocol/v1.ts";
import { encodeV2Event } from "../protocol/v2.ts";

/** A connection with v2 events waiting to go out. */
export interface Flushable {
  /** Sends the waiting events as one frame. */
  flush(): void;
}

/** Most times a flush steps aside, so a turn that keeps queuing still flushes. */
const MAX_LOOKS = 64;

/**
 * Encodes and batches outgoing events for every connection of one server.
 * A broadcast hands the same event object to every recipient in a row, so
 * remembering the last event and its encoding makes a room's fan-out cost
 * one serialization; everyone in a busy room is flushed one after another
 * with the same events, so the last batch's frame is remembered too.
 */
export class Outbox {
  #lastTime = NaN;
  #lastTimeText = "";
  #v1Event: ChatEvent | undefined;
  #v1BodyJson = "";
  #v1Frame = "";
  #v1OwnFrame: string | undefined;
  #v2Event: ChatEvent | undefined;
  #v2Json = "";
  #lastBatch: readonly string[] = [];
  #lastBatchFrame = "";
  readonly #waiting = new Set<Flushable>();
  #flushScheduled = false;
  /** Whether an event was queued since the flush last looked. */
  #queuedSinceLook = false;
  #looks = 0;

  /**
   * `time` (milliseconds since the Unix epoch) in ISO 8601, UTC. The events
   * of a burst share their millisecond, and formatting a date costs more than
   * the rest of an event's JSON.
   */
  time(time: number): string {
    if (time !== this.#lastTime) {
      this.#lastTimeText = new Date(time).toISOString();
      this.#lastTime = time;
    }
    return this.#lastTimeText;
  }

  /** The original protocol's frame for `event`; `own` for its author's copy. */
  v1Frame(event: ChatEvent, own: boolean): string {
    if (event !== this.#v1Event) {
      this.#v1Event = event;
      this.#v1BodyJson = JSON.stringify(event.body);
      this.#v1Frame = joinV1Frame(this.#v1BodyJson, event.origin, this.time(event.sentAt));
      this.#v1OwnFrame = undefined;
    }
    if (!own) return this.#v1Frame;
    return this.#v1OwnFrame ??= joinV1Frame(this.#v1BodyJson, "SELF", this.time(event.sentAt));
  }

  /** The v2 JSON of `event`, the same for every recipient. */
  v2Event(event: ChatEvent): string {
    if (event !== this.#v2Event) {
      this.#v2Event = event;
      this.#v2Json = encodeV2Event(event, this.time(event.sentAt));
    }
    return this.#v2Json;
  }

  /** One v2 frame for a batch of events: the event alone, or a JSON array of them. */
  batchFrame(batch: readonly string[]): string {
    if (batch.length === 1) return batch[0];
    if (!sameEvents(batch, this.#lastBatch)) {
      this.#lastBatch = batch;
      this.#lastBatchFrame = `[${batch.join(",")}]`;
    }
    return this.#lastBatchFrame;
  }

  /**
   * Notes that `connection` queued an event (`first` when its queue was
   * empty): it is flushed at the end of the current turn of the event loop.
   * The end of a turn is found with microtasks: frames already read are
   * handled in microtasks too, so the flush steps aside, one microtask at a
   * time, for as long as the last step queued more events. (A timer would
   * wait for the next turn, but setTimeout(0) costs 1 to 2 ms in Deno, which
   * every delivery would wait.)
   */
  queued(connection: Flushable, first: boolean): void {
    this.#queuedSinceLook = true;
    if (!first) return;
    this.#waiting.add(connection);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flushWaiting);
  }

  readonly #flushWaiting = (): void => {
    if (this.#queuedSinceLook && this.#looks < MAX_LOOKS) {
      this.#queuedSinceLook = false;
      this.#looks++;
      queueMicrotask(this.#flushWaiting);
      return;
    }
    this.#looks = 0;
    this.#flushScheduled = false;
    for (const connection of this.#waiting) connection.flush();
    this.#waiting.clear();
  };
}

/**
 * Whether two batches hold the same events: a pointer check per event when
 * they hold the same event strings, stopping at the first that differs.
 */
function sameEvents(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}
