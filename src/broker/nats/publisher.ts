/**
 * Publishing room events to the stream: each room has one stream message in
 * flight at most, and the notes published meanwhile wait to go out together
 * in the next, once it is acknowledged (a busy room sends few large messages,
 * a quiet one sends each note at once). Stream messages are numbered per room
 * and subject (readers tell from the numbers when the stream dropped some
 * before they read them); many rooms' messages are in flight at once, and
 * whatever was not acknowledged is sent again, in order, once NATS is back.
 * A retry of a message that was stored after all is dropped by the stream,
 * which remembers message ids.
 *
 * Every stream message fits the NATS server's `max_payload`: batches are cut
 * to it, and a note too large to go even alone is refused to its sender
 * (counted), so nothing waits in the outbox for a publish that cannot work.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Metrics } from "../../metrics.ts";
import { logKey, type PublishOutcome, type RoomNote } from "../types.ts";
import { changeUnits } from "../kv_layout.ts";
import type { StreamWriter } from "./acks.ts";
import { SentBatches } from "./sent.ts";
import { MAX_NOTES_PER_BATCH, type RoomBatch, writeRoomBatch } from "./batch.ts";

const log = getLogger(["chat", "cluster"]);

/** Stream messages sent and not yet acknowledged, at most (one per room). */
const MAX_IN_FLIGHT = 64;

/** Bytes of notes in one stream message, about (NATS takes 1 MiB by default). */
const MAX_BATCH_BYTES = 256 * 1024;
/** Wait before sending again after a failure, while connected. */
const RETRY_MS = 250;
/** While publishes keep failing, one log line this often says so (the first says why). */
const FAILURE_LOG_EVERY_MS = 30_000;
/** Publishes failing this long make the instance unhealthy (`/healthz` says degraded). */
const UNHEALTHY_AFTER_MS = 5_000;
/**
 * What a stream message holds besides its notes and its subject:
 * `{"from":…,"n":…,"room":…,"m":[…]}` (the room is counted in each note's
 * bound, which a packed note no longer holds), and the header of its id
 * (which holds the subject once more: counted apart, at 3 bytes a unit).
 */
const ENVELOPE_BYTES = 128;
/** UTF-16 units of an ordinary room's longest subject: 32 characters, each escaped (`%2E`). */
const LONGEST_SUBJECT = 108;
/**
 * UTF-16 units any room's subject stays within: 32 characters, each folding
 * to at most 18 (U+FDFA does), each of those at most 2 units and escaped.
 */
const ANY_SUBJECT = 12 + 32 * 18 * 6;
/** What a note holds besides its strings: keys, ids, numbers, the author's instance. */
const NOTE_FIXED_BYTES = 256;
/** UTF-16 units of a note's longest room, author and id together (32 code points each, at most 2 units). */
const LONGEST_NAMES = 192;
const encoder = new TextEncoder();

/**
 * The room's part of its subjects: its key, with what a subject token may
 * not hold (".", "*", ">", spaces, and "%" itself) written as %XX.
 */
export function roomToken(room: string): string {
  return logKey(room).replace(
    /[.*>%\s]/gu,
    (char) => encodeURIComponent(char).replace(".", "%2E").replace("*", "%2A"),
  );
}

/** The subject a room's notes go to: messages (with the presence around them), or presence alone. */
export function roomSubject(room: string, kind: "m" | "p"): string {
  return subjectOf(roomToken(room), kind);
}

function subjectOf(token: string, kind: "m" | "p"): string {
  return `chat.room.${token}.${kind}`;
}

/** One stream message to send: open to more notes of its room until first sent. */
interface Batch {
  /** Its room's part of the subject. */
  readonly token: string;
  readonly notes: RoomNote[];
  /** The notes' bytes, counted at their bound. */
  bytes: number;
  /** What goes to NATS, fixed when first sent: a retry sends exactly that. */
  message?: StreamMessage;
  acked: boolean;
  sent: boolean;
}

interface StreamMessage {
  readonly subject: string;
  /** Its JSON, in UTF-8. */
  readonly payload: Uint8Array;
  /**
   * The stream drops a second message with the same id, so a retry is stored
   * once: this instance, the batch's number on its subject, a random part
   * (ids are seen on the stream: one foretold could be taken first, and the
   * batch then dropped as a duplicate), and the subject. (Not a note's id:
   * survivors say goodbye under the same ids, and a batch of one would then
   * drop another's whole batch.)
   */
  readonly id: string;
}

/** Sends room notes to the stream for one instance. */
export class Publisher {
  readonly #acks: StreamWriter;
  readonly #instance: string;
  /** The last number given to a batch, by subject. */
  readonly #numbers = new Map<string, number>();
  readonly #metrics: Metrics | undefined;
  /** Room events kept while NATS is away; beyond this, users are told to try later. */
  readonly #maxOutbox: number;
  /** Batches sent, until read back from the stream. */
  readonly #sent = new SentBatches();
  /** This turn's notes, by room (as spelled: a spelling costs less to look up than a key). */
  readonly #pending = new Map<string, RoomNote[]>();
  #pendingNotes = 0;
  #scheduled = false;
  /** Batches not yet acknowledged, in order. */
  readonly #outbox: Batch[] = [];
  #outboxNotes = 0;
  /** Each room's last batch while it is not sent yet, by room token: its room's next notes join it. */
  readonly #open = new Map<string, Batch>();
  /** The rooms (by token) with a batch in flight. */
  readonly #busy = new Set<string>();
  #inFlight = 0;
  /** Set when a send failed: nothing more goes out until the in-flight ones settle. */
  #failed = false;
  #connected = true;
  /** Bumped when the connection drops: what was sent before goes again, its answers unheard. */
  #generation = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Who waits until nothing does. */
  #idle: (() => void)[] = [];
  /** The largest payload the NATS server takes now (it may change with the server). */
  readonly #maxPayload: () => number;
  /** Since when publishes have failed, and how many, while they do. */
  #failing: { since: number; failures: number; loggedAt: number } | undefined;

  constructor(
    acks: StreamWriter,
    options: { instance: string; maxOutbox: number; maxPayload: () => number; metrics?: Metrics },
  ) {
    this.#acks = acks;
    this.#instance = options.instance;
    this.#maxOutbox = options.maxOutbox;
    this.#maxPayload = options.maxPayload;
    this.#metrics = options.metrics;
  }

  /** Whether publishes work, or failed for a moment only. */
  get healthy(): boolean {
    return this.#failing === undefined || Date.now() - this.#failing.since < UNHEALTHY_AFTER_MS;
  }

  /** Notes waiting to be stored. */
  get waiting(): number {
    return this.#pendingNotes + this.#outboxNotes;
  }

  /**
   * Queues a note for the end of this turn: `busy` when too many wait
   * already (unless it is a `goodbye`, which nobody else may say: one per
   * user at most), `too_large` when it cannot go even alone under `max_payload`.
   */
  publish(note: RoomNote, { goodbye = false } = {}): PublishOutcome {
    if (this.waiting >= this.#maxOutbox && !goodbye) {
      this.#metrics?.clusterRefused.inc();
      return "busy";
    }
    if (!this.#fitsAlone(note)) {
      this.#metrics?.clusterOversized.inc();
      log.warning("Refused a note of {bytes} bytes: NATS takes at most {max}", {
        bytes: encoder.encode(JSON.stringify(note)).length,
        max: this.#maxPayload(),
      });
      return "too_large";
    }
    const notes = this.#pending.get(note.room);
    if (notes === undefined) this.#pending.set(note.room, [note]);
    else notes.push(note);
    this.#pendingNotes++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#batch());
    }
    return "queued";
  }

  /** The bytes of notes one stream message of the room with `token` may hold now. */
  #limit(token: string): number {
    const header = 3 * subjectOf(token, "m").length;
    return Math.min(MAX_BATCH_BYTES, this.#maxPayload() - ENVELOPE_BYTES - header);
  }

  /**
   * Whether `note` fits a stream message: by its bound against any room's
   * subject (almost always: no room is looked at on the way of every
   * message), else against its own room's, else measured.
   */
  #fitsAlone(note: RoomNote): boolean {
    const bound = noteBytes(note);
    const anyRoom = this.#maxPayload() - ENVELOPE_BYTES - 3 * ANY_SUBJECT;
    if (bound <= Math.min(MAX_BATCH_BYTES, anyRoom)) return true;
    const limit = this.#limit(roomToken(note.room));
    return bound <= limit || encoder.encode(JSON.stringify(note)).length <= limit;
  }

  /**
   * Whether NATS is reachable: while it is not, batches wait. When the link
   * drops, whatever was in flight is sent again once it is back, rather than
   * awaited until it times out.
   */
  set connected(connected: boolean) {
    this.#connected = connected;
    if (!connected) {
      this.#acks.forget();
      this.#generation++;
      this.#inFlight = 0;
      this.#busy.clear();
      this.#failed = false;
      clearTimeout(this.#retry);
      for (const batch of this.#outbox) batch.sent = batch.acked;
      return;
    }
    this.#pump();
  }

  /**
   * The batch this instance published under the stream message id `id`, as
   * it wrote it, if still kept and the stream message (its `subject` and
   * `data`) is exactly what was sent: read back, it need not be decoded.
   */
  readBack(id: string | undefined, subject: string, data: Uint8Array): RoomBatch | undefined {
    return this.#sent.take(id, subject, data);
  }

  /** Resolves once every note queued so far is stored, or at once while NATS is away. */
  drained(): Promise<void> {
    if (this.waiting === 0 || !this.#connected) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    clearTimeout(this.#retry);
  }

  /**
   * Adds this turn's notes to their rooms' open batches, or new ones when
   * there is none or it is full (within the payload NATS takes: notes are
   * counted at their bound, and one over it goes alone), and sends what may go.
   */
  #batch(): void {
    this.#scheduled = false;
    for (const notes of this.#pending.values()) {
      const token = roomToken(notes[0].room);
      const limit = this.#limit(token);
      let batch = this.#open.get(token);
      for (const note of notes) {
        const bytes = noteBytes(note);
        if (
          batch === undefined || batch.notes.length >= MAX_NOTES_PER_BATCH ||
          (batch.notes.length > 0 && batch.bytes + bytes > limit)
        ) {
          batch = { token, notes: [], bytes: 0, acked: false, sent: false };
          this.#outbox.push(batch);
          this.#open.set(token, batch);
        }
        batch.notes.push(note);
        batch.bytes += bytes;
      }
      this.#outboxNotes += notes.length;
    }
    this.#pending.clear();
    this.#pendingNotes = 0;
    this.#pump();
  }

  /** Fixes what `batch` sends, now and on every retry: it takes no more notes. */
  #seal(batch: Batch): StreamMessage {
    const { token, notes } = batch;
    if (this.#open.get(token) === batch) this.#open.delete(token);
    const subject = subjectOf(token, notes.some((note) => note.kind === "message") ? "m" : "p");
    const n = (this.#numbers.get(subject) ?? 0) + 1;
    this.#numbers.set(subject, n);
    const json = writeRoomBatch(this.#instance, n, notes);
    const payload = encoder.encode(json);
    const id = `${this.#instance}.${n}.${crypto.randomUUID()}.${subject}`;
    this.#sent.keep(id, subject, json, payload.length, {
      notes,
      from: this.#instance,
      n,
      refused: [],
    });
    batch.message = { subject, payload, id };
    return batch.message;
  }

  /**
   * Sends what waits, in order: up to MAX_IN_FLIGHT unacknowledged, and one
   * per room (so a room's messages are stored in the order sent, retries
   * included).
   */
  #pump(): void {
    if (!this.#connected || this.#failed) return;
    for (const batch of this.#outbox) {
      if (this.#inFlight >= MAX_IN_FLIGHT) return;
      // Acknowledged on the link before (after the head was sent again): stored, not sent again.
      if (batch.sent || batch.acked || this.#busy.has(batch.token)) continue;
      const { subject, payload, id } = batch.message ?? this.#seal(batch);
      batch.sent = true;
      this.#inFlight++;
      this.#busy.add(batch.token);
      const generation = this.#generation;
      this.#acks.publish(subject, payload, id)
        .then(() => {
          // Answers to what was sent before the link dropped are not heard (see `forget`).
          if (generation !== this.#generation) return;
          batch.acked = true;
          this.#recovered();
          this.#settle(batch);
        })
        .catch((error) => {
          if (generation !== this.#generation) return;
          if (/max_payload/.test(String(error))) {
            // NATS now takes less than when the batch was cut (another server): it can never go.
            this.#metrics?.clusterOversized.inc(batch.notes.length);
            log.error("Dropped {notes} notes NATS refused as too large: {error}", {
              notes: batch.notes.length,
              error,
            });
            batch.acked = true;
            this.#settle(batch);
            return;
          }
          if (!this.#failed) this.#failedOnce(error);
          this.#failed = true;
          this.#settle(batch);
        });
    }
  }

  /** A publish failed: said at once, then at most every 30 s while they keep failing. */
  #failedOnce(error: unknown): void {
    this.#metrics?.clusterPublishFailures.inc();
    const now = Date.now();
    const failing = this.#failing;
    if (failing === undefined) {
      this.#failing = { since: now, failures: 1, loggedAt: now };
      log.warning("Cannot publish to the stream, sending again: {error}", { error });
      return;
    }
    failing.failures++;
    if (now - failing.loggedAt < FAILURE_LOG_EVERY_MS) return;
    failing.loggedAt = now;
    log.warning(
      "Still cannot publish to the stream ({failures} failures in {seconds} s): {error}",
      {
        failures: failing.failures,
        seconds: Math.round((now - failing.since) / 1000),
        error,
      },
    );
  }

  #recovered(): void {
    const failing = this.#failing;
    if (failing === undefined) return;
    this.#failing = undefined;
    log.info("Publishing to the stream again, after {failures} failures", {
      failures: failing.failures,
    });
  }

  /** After an answer to `batch`: drops the acknowledged head, retries after a failure, sends more. */
  #settle(batch: Batch): void {
    this.#inFlight--;
    this.#busy.delete(batch.token);
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
      this.#outboxNotes -= this.#outbox.shift()?.notes.length ?? 0;
    }
    if (this.waiting === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}

/**
 * The longest message text, in characters (code points, as
 * `max_message_len` counts them; 4 bytes each at most), sure to go under a
 * NATS `max_payload` of `maxPayload` bytes, with the longest user names and
 * an ordinary room name (one folding to many characters takes more: such a
 * message is measured, and refused to its sender if it does not fit).
 */
export function longestTextFor(maxPayload: number): number {
  const limit = Math.min(MAX_BATCH_BYTES, maxPayload - ENVELOPE_BYTES - 3 * LONGEST_SUBJECT);
  return Math.max(0, Math.floor((limit - NOTE_FIXED_BYTES - 3 * LONGEST_NAMES) / 4));
}

/**
 * At least the bytes of a note as JSON: every string's UTF-16 units at 3
 * bytes each (cleaned text holds no control character or lone surrogate,
 * the only units JSON writes longer), plus the rest.
 */
function noteBytes(note: RoomNote): number {
  const units = note.room.length + note.author.name.length + note.id.length +
    (note.kind === "message"
      ? note.text.length + changeUnits(note) + (note.to?.length ?? 0)
      : (note.oldName?.length ?? 0) + (note.by?.length ?? 0) + (note.reason?.length ?? 0));
  return NOTE_FIXED_BYTES + 3 * units;
}
