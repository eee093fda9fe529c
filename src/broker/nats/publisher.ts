/**
 * Publishing room events to the stream: the notes published in one turn of
 * the event loop go out as one stream message per room, numbered per room
 * and subject (readers tell from the numbers when the stream dropped some
 * before they read them), many messages are in
 * flight at once (acknowledgements are awaited together, not one by one),
 * and whatever was not acknowledged is sent again, in order, once NATS is
 * back. A retry of a message that was stored after all is dropped by the
 * stream, which remembers message ids.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Metrics } from "../../metrics.ts";
import { nameKey } from "../../text/names.ts";
import type { RoomNote } from "../types.ts";

const log = getLogger(["chat", "cluster"]);

/** Stream messages sent and not yet acknowledged, at most. */
const MAX_IN_FLIGHT = 64;
/** Notes in one stream message, at most (a seq is the stream's times 1000, plus the index). */
const MAX_BATCH_NOTES = 256;
/** Bytes of notes in one stream message, about (NATS takes 1 MiB by default). */
const MAX_BATCH_BYTES = 256 * 1024;
/** Wait before sending again after a failure, while connected. */
const RETRY_MS = 250;

/**
 * The room's part of its subjects: its key, with what a subject token may
 * not hold (".", "*", ">", spaces, and "%" itself) written as %XX.
 */
export function roomToken(room: string): string {
  return nameKey(room).replace(
    /[.*>%\s]/gu,
    (char) => encodeURIComponent(char).replace(".", "%2E").replace("*", "%2A"),
  );
}

/** The subject a room's notes go to: messages (with the presence around them), or presence alone. */
export function roomSubject(room: string, kind: "m" | "p"): string {
  return `chat.room.${roomToken(room)}.${kind}`;
}

/** One stream message to send. */
interface Batch {
  readonly subject: string;
  readonly payload: string;
  /** The stream drops a second message with the same id: the first note's id. */
  readonly id: string;
  readonly notes: number;
  acked: boolean;
  sent: boolean;
}

/** Sends room notes to the stream for one instance. */
export class Publisher {
  readonly #js: JetStreamClient;
  readonly #instance: string;
  /** The last number given to a batch, by subject. */
  readonly #numbers = new Map<string, number>();
  readonly #metrics: Metrics | undefined;
  /** Room events kept while NATS is away; beyond this, users are told to try later. */
  readonly #maxOutbox: number;
  /** This turn's notes, by room (as spelled: a spelling costs less to look up than a key). */
  readonly #pending = new Map<string, RoomNote[]>();
  #pendingNotes = 0;
  #scheduled = false;
  /** Batches not yet acknowledged, in order. */
  readonly #outbox: Batch[] = [];
  #outboxNotes = 0;
  #inFlight = 0;
  /** Set when a send failed: nothing more goes out until the in-flight ones settle. */
  #failed = false;
  #connected = true;
  /** Bumped when the connection drops: answers to what was sent before are no longer awaited. */
  #generation = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #idle: (() => void) | undefined;

  constructor(
    js: JetStreamClient,
    options: { instance: string; maxOutbox: number; metrics?: Metrics },
  ) {
    this.#js = js;
    this.#instance = options.instance;
    this.#maxOutbox = options.maxOutbox;
    this.#metrics = options.metrics;
  }

  /** Notes waiting to be stored. */
  get waiting(): number {
    return this.#pendingNotes + this.#outboxNotes;
  }

  /** Queues a note for the end of this turn; false when too many wait already. */
  publish(note: RoomNote): boolean {
    if (this.waiting >= this.#maxOutbox) {
      this.#metrics?.clusterRefused.inc();
      return false;
    }
    const notes = this.#pending.get(note.room);
    if (notes === undefined) this.#pending.set(note.room, [note]);
    else notes.push(note);
    this.#pendingNotes++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#batch());
    }
    return true;
  }

  /**
   * Whether NATS is reachable: while it is not, batches wait. When the link
   * drops, whatever was in flight is sent again once it is back, rather than
   * awaited until it times out.
   */
  set connected(connected: boolean) {
    this.#connected = connected;
    if (!connected) {
      this.#generation++;
      this.#inFlight = 0;
      this.#failed = false;
      clearTimeout(this.#retry);
      for (const batch of this.#outbox) batch.sent = batch.acked;
      return;
    }
    this.#pump();
  }

  /** Resolves once every note queued so far is stored, or at once while NATS is away. */
  drained(): Promise<void> {
    if (this.waiting === 0 || !this.#connected) return Promise.resolve();
    return new Promise((resolve) => this.#idle = resolve);
  }

  close(): void {
    clearTimeout(this.#retry);
  }

  /** Turns this turn's notes into batches, one per room (more when large), and sends them. */
  #batch(): void {
    this.#scheduled = false;
    for (const notes of this.#pending.values()) {
      let start = 0;
      while (start < notes.length) {
        let end = start;
        let bytes = 0;
        while (end < notes.length && end - start < MAX_BATCH_NOTES && bytes < MAX_BATCH_BYTES) {
          bytes += noteBytes(notes[end]);
          end++;
        }
        this.#enqueue(notes.slice(start, end));
        start = end;
      }
    }
    this.#pending.clear();
    this.#pendingNotes = 0;
    this.#pump();
  }

  #enqueue(notes: RoomNote[]): void {
    const kind = notes.some((note) => note.kind === "message") ? "m" : "p";
    const subject = roomSubject(notes[0].room, kind);
    const n = (this.#numbers.get(subject) ?? 0) + 1;
    this.#numbers.set(subject, n);
    this.#outbox.push({
      subject,
      payload: JSON.stringify({ from: this.#instance, n, notes }),
      id: notes[0].id,
      notes: notes.length,
      acked: false,
      sent: false,
    });
    this.#outboxNotes += notes.length;
  }

  /** Sends what waits, keeping up to MAX_IN_FLIGHT unacknowledged. */
  #pump(): void {
    if (!this.#connected || this.#failed) return;
    for (const batch of this.#outbox) {
      if (this.#inFlight >= MAX_IN_FLIGHT) return;
      if (batch.sent) continue;
      batch.sent = true;
      this.#inFlight++;
      const generation = this.#generation;
      this.#js.publish(batch.subject, batch.payload, { msgID: batch.id })
        .then(() => {
          batch.acked = true;
          if (generation === this.#generation) this.#settle();
          else this.#dropAcknowledged();
        })
        .catch((error) => {
          if (generation !== this.#generation) return;
          if (!this.#failed) {
            log.warning("Cannot publish to the stream, sending again: {error}", { error });
            this.#metrics?.clusterPublishFailures.inc();
          }
          this.#failed = true;
          this.#settle();
        });
    }
  }

  /** After an answer: drops the acknowledged head, retries after a failure, sends more. */
  #settle(): void {
    this.#inFlight--;
    this.#dropAcknowledged();
    if (this.#failed && this.#inFlight === 0) {
      // Everything not acknowledged goes again, in order, in a moment.
      for (const batch of this.#outbox) batch.sent = batch.acked;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => {
        this.#failed = false;
        this.#pump();
      }, RETRY_MS);
    }
    if (!this.#failed) this.#pump();
  }

  #dropAcknowledged(): void {
    while (this.#outbox.length > 0 && this.#outbox[0].acked) {
      this.#outboxNotes -= this.#outbox.shift()?.notes ?? 0;
    }
    if (this.waiting === 0) {
      this.#idle?.();
      this.#idle = undefined;
    }
  }
}

function noteBytes(note: RoomNote): number {
  return 256 + (note.kind === "message" ? note.text.length * 3 : 0);
}
