/**
 * Publishing to the stream and hearing it stored: what the library's
 * `JetStreamClient.publish` does, at a fraction of its cost per message.
 * There, each publish is a request of its own: a timer, a token, and an
 * `Error` object made when it ends, even when all went well (about a third
 * of the library's time in a busy room). Here, every acknowledgement comes
 * to one subscription, and one timer looks after everything in flight.
 *
 * @module
 */

import { createInbox, headers, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { DecodeError, fields, text } from "../decode.ts";
import { parse } from "./wire.ts";

/** How long a publish waits for the stream to say it stored it (as the library's default). */
const ACK_TIMEOUT_MS = 5000;
/** The header the stream drops a second message by. */
const MSG_ID = "Nats-Msg-Id";

/** A publish the stream did not store, and why. */
export class PublishError extends Error {
  override readonly name = "PublishError";
}

/** What publishes to the stream (a fake in tests). */
export interface StreamWriter {
  /** Resolves once the stream stored the message; rejects with why it did not. */
  publish(subject: string, payload: Uint8Array, id: string): Promise<void>;
  /** Refuses what is in flight, whose answers will not be heard (the link dropped). */
  forget(): void;
}

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (error: PublishError) => void;
  readonly sentAt: number;
}

/** Stream publishes of one connection, each acknowledged or failed. */
export class StreamAcks implements StreamWriter {
  readonly #nc: NatsConnection;
  /** Where the stream's answers come: this prefix and each publish's number. */
  readonly #inbox = createInbox();
  readonly #waiting = new Map<string, Waiting>();
  #next = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #timeoutMs: number;

  constructor(nc: NatsConnection, timeoutMs = ACK_TIMEOUT_MS) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    nc.subscribe(`${this.#inbox}.*`, { callback: (_error, message) => this.#answered(message) });
  }

  /**
   * Publishes `payload` on `subject` under the stream message id `id`;
   * resolves once the stream stored it (or had it already, under that id),
   * and rejects with a {@linkcode PublishError} when it did not, or when the
   * connection refused it (a payload over `max_payload`).
   */
  publish(subject: string, payload: Uint8Array, id: string): Promise<void> {
    const token = String(++this.#next);
    const header = headers();
    header.set(MSG_ID, id);
    try {
      this.#nc.publish(subject, payload, { reply: `${this.#inbox}.${token}`, headers: header });
    } catch (error) {
      return Promise.reject(
        new PublishError(error instanceof Error ? error.message : String(error)),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiting.set(token, { resolve, reject, sentAt: Date.now() });
    this.#timer ??= setInterval(() => this.#expire(), this.#timeoutMs / 5);
    return promise;
  }

  /** Refuses what is in flight: no answer to it will be heard (the link dropped). */
  forget(): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    this.#stopTimer();
    for (const { reject } of waiting) reject(new PublishError("the link to NATS dropped"));
  }

  #answered(message: Msg): void {
    const token = message.subject.slice(this.#inbox.length + 1);
    const waiting = this.#waiting.get(token);
    if (waiting === undefined) return;
    this.#waiting.delete(token);
    if (this.#waiting.size === 0) this.#stopTimer();
    const refusal = refusalOf(message);
    if (refusal === undefined) waiting.resolve();
    else waiting.reject(new PublishError(refusal));
  }

  /** Fails what waited too long for its answer. */
  #expire(): void {
    const late = Date.now() - this.#timeoutMs;
    for (const [token, waiting] of this.#waiting) {
      if (waiting.sentAt > late) continue;
      this.#waiting.delete(token);
      waiting.reject(new PublishError(`no answer from the stream in ${this.#timeoutMs} ms`));
    }
    if (this.#waiting.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Why the stream's answer says it did not store the message, or `undefined` when it did. */
function refusalOf(message: Msg): string | undefined {
  if (message.headers?.hasError) {
    const { code, description } = message.headers;
    return code === 503 ? "no stream takes this subject (no responders)" : `${code} ${description}`;
  }
  try {
    const answer = fields(parse(message.string()), "a stream acknowledgement");
    if (answer.error !== undefined) {
      const error = fields(answer.error, "a stream error");
      return text(error, "description", "a stream error", 1000);
    }
    text(answer, "stream", "a stream acknowledgement", 1000);
    return undefined;
  } catch (error) {
    return error instanceof DecodeError ? error.message : String(error);
  }
}
