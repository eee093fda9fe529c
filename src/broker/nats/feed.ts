/**
 * One room's events, read from the stream by an instance with members in
 * that room: its kept history first, then live events, in the stream's
 * order. After NATS comes back, the feed starts again right after the last
 * message it delivered, at once, instead of waiting for the client library to
 * notice that its consumer is gone.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { ConsumerMessages } from "@nats-io/jetstream";
import { roomToken } from "./publisher.ts";
import type { RoomNote } from "../types.ts";
import { DecodeError } from "../decode.ts";
import { readRoomNotes, type RoomBatch } from "./batch.ts";

const log = getLogger(["chat", "cluster"]);

/** Publishers whose batch numbers a feed remembers, at most: instances of a cluster are fewer. */
const MAX_PUBLISHERS = 256;

/** Stream messages one pull asks for. */
const PULL_BATCH = 256;
/** Wait before reading again after the read failed. */
const RETRY_MS = 500;
/** The header of a stream message's id, which the stream drops duplicates by. */
const MSG_ID = "Nats-Msg-Id";

/** What a {@linkcode RoomFeed} reads from and where it delivers. */
export interface RoomFeedOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  /** The room's name as first written. */
  readonly room: string;
  /** `max_message_len`: a message longer than a user could send is refused. */
  readonly maxText: number;
  /**
   * The notes of one stream message, numbered `seq`; `live` is false while
   * the feed replays what the stream kept from before it started.
   */
  readonly deliver: (notes: readonly (RoomNote | undefined)[], seq: number, live: boolean) => void;
  /**
   * The batch this instance wrote under the stream message id `id`, when it
   * still has it and the stream message is exactly what it sent (see
   * `Publisher.readBack`).
   */
  readonly readBack: (
    id: string | undefined,
    subject: string,
    data: Uint8Array,
  ) => RoomBatch | undefined;
  /** A stream message that could not be read, and why. */
  readonly malformed: (subject: string, error: DecodeError) => void;
  /**
   * Messages the stream dropped (it keeps so many per room) before this
   * feed read them, found by the numbers their publishers gave them.
   */
  readonly lost: (messages: number) => void;
}

/** The events of one room, as long as this instance follows it. */
export class RoomFeed {
  readonly room: string;
  readonly #options: RoomFeedOptions;
  /** The stream sequence of the last message delivered. */
  #lastSeq = 0;
  #caughtUp = false;
  #ready: Promise<void>;
  #markReady: () => void = () => {};
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Messages the stream held after the last delivered one, when last heard of. */
  #lag = 0;
  /** The number of the last room message read, by publishing instance. */
  readonly #numbers = new Map<string, number>();

  constructor(options: RoomFeedOptions) {
    this.#options = options;
    this.room = options.room;
    this.#ready = new Promise((resolve) => this.#markReady = resolve);
    this.#run();
  }

  /** Whether the kept history has been delivered. */
  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** Resolves once the kept history has been delivered. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Messages behind the stream's newest, as of the last one read. */
  get lag(): number {
    return this.#lag;
  }

  /** Reads again from right after the last message delivered (after a reconnect). */
  restart(): void {
    if (this.#stopped) return;
    const messages = this.#messages;
    this.#messages = undefined;
    clearTimeout(this.#retry);
    messages?.close().catch((error) => this.#closeFailed(error));
    this.#run();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#messages?.close().catch((error) => this.#closeFailed(error));
    this.#messages = undefined;
  }

  #closeFailed(error: unknown): void {
    log.debug("Cannot close the reader of room {room}: {error}", { room: this.room, error });
  }

  async #run(): Promise<void> {
    const { js, jsm, stream } = this.#options;
    const subjects = `chat.room.${roomToken(this.room)}.>`;
    try {
      if (!this.#caughtUp && this.#lastSeq === 0) {
        const info = await jsm.streams.info(stream, { subjects_filter: subjects });
        if (Object.keys(info.state.subjects ?? {}).length === 0) this.#catchUp();
      }
      const start = this.#lastSeq === 0
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#lastSeq + 1 };
      const consumer = await js.consumers.get(stream, { filter_subjects: subjects, ...start });
      if (this.#stopped) return;
      const messages = await consumer.consume({ max_messages: PULL_BATCH });
      if (this.#stopped) {
        await messages.close();
        return;
      }
      this.#messages = messages;
      for await (const message of messages) {
        if (message.seq <= this.#lastSeq) continue;
        this.#lastSeq = message.seq;
        this.#lag = message.info.pending;
        try {
          const batch =
            this.#options.readBack(message.headers?.get(MSG_ID), message.subject, message.data) ??
              readRoomNotes(message.string(), this.room, this.#options.maxText);
          if (message.subject.endsWith(".m")) this.#count(batch);
          for (const error of batch.refused) this.#options.malformed(message.subject, error);
          this.#options.deliver(batch.notes, message.seq, this.#caughtUp);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          this.#options.malformed(message.subject, error);
        }
        if (message.info.pending === 0) this.#catchUp();
      }
      if (this.#messages !== messages || this.#stopped) return;
      throw new Error("the consumer stopped");
    } catch (error) {
      if (this.#stopped) return;
      log.warning("Cannot read room {room} from the stream, trying again: {error}", {
        room: this.room,
        error,
      });
      this.#retry = setTimeout(() => this.restart(), RETRY_MS);
    }
  }

  /** Notes the number of a room message, and what its publisher's numbers skipped. */
  #count({ from, n, notes }: RoomBatch): void {
    if (from === undefined || n === undefined) return;
    const last = this.#numbers.get(from);
    // A batch with nothing readable (garbage, or notes past this instance's limits) only moves the
    // count on by one: it neither opens a gap (a readable batch after it would) nor starts one.
    const readable = notes.some((note) => note !== undefined);
    if (!readable && (last === undefined || n !== last + 1)) return;
    // Most recently heard last, so that a flood of made-up publishers forgets them first.
    this.#numbers.delete(from);
    this.#numbers.set(from, Math.max(n, last ?? 0));
    if (this.#numbers.size > MAX_PUBLISHERS) {
      this.#numbers.delete(this.#numbers.keys().next().value!);
    }
    // The first one read from a publisher may follow others no longer kept: that is history.
    if (last !== undefined && n > last + 1) this.#options.lost(n - last - 1);
  }

  #catchUp(): void {
    if (this.#caughtUp) return;
    this.#caughtUp = true;
    this.#markReady();
  }
}
