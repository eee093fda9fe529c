/**
 * The boundary between a WebSocket and the chat: frames in become
 * {@linkcode Chatroom} calls, events out become frames. Transport rules live
 * here: the frame size limit and the slow-consumer cut-off.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Chatroom } from "./chatroom.ts";
import type { ConnectionLimits } from "./config.ts";
import type { ChatEvent, Sink } from "./events.ts";
import type { Metrics } from "./metrics.ts";
import { encodeTextFrame } from "./protocol/text.ts";
import { decodeV2Frame, encodeV2Frame } from "./protocol/v2.ts";
import type { User } from "./user.ts";

/** The WebSocket close code for a frame over `max_frame_bytes`. */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
/** The WebSocket close code for a client that cannot keep up ("try again later"). */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** The part of a WebSocket the chat uses, so tests can pass a fake. */
export interface SocketLike {
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const log = getLogger(["chat", "connection"]);

/** Whether `text` takes more than `max` bytes in UTF-8, without encoding it when length decides. */
function exceedsBytes(text: string, max: number): boolean {
  // UTF-8 takes at least one byte and at most three per UTF-16 code unit.
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return new TextEncoder().encode(text).length > max;
}

/** Frames between two looks at a socket's unsent data. */
const BUFFER_CHECK_EVERY = 8;

/** Most events one v2 frame carries; a longer queue goes out in several. */
const MAX_BATCH = 256;

/**
 * Connections with v2 events waiting. They are flushed together at the end
 * of the current turn of the event loop, so that everything the frames read
 * in one turn cause leaves as one frame per socket. The end of a turn is
 * found with microtasks: frames already read are handled in microtasks too,
 * so the flush steps aside, one microtask at a time, for as long as the last
 * step queued more events. (A timer would wait for the next turn, but
 * setTimeout(0) costs 1 to 2 ms in Deno, which every delivery would wait.)
 */
const waiting = new Set<Connection>();
let flushScheduled = false;
/** Whether an event was queued since the flush last looked. */
let queuedSinceLook = false;
let looks = 0;
/** Most times a flush steps aside, so a turn that keeps queuing still flushes. */
const MAX_LOOKS = 64;

function flushWaiting(): void {
  if (queuedSinceLook && looks < MAX_LOOKS) {
    queuedSinceLook = false;
    looks++;
    queueMicrotask(flushWaiting);
    return;
  }
  looks = 0;
  flushScheduled = false;
  for (const connection of waiting) connection.flush();
  waiting.clear();
}

/**
 * The last batch joined into a frame and that frame: everyone in a busy room
 * is flushed one after another with the same events, so their frame is
 * joined once. Comparing two batches costs a pointer check per event when
 * they hold the same event strings, and stops at the first that differs.
 */
let lastBatch: readonly string[] = [];
let lastFrame = "";

function batchFrame(batch: readonly string[]): string {
  if (batch.length === 1) return batch[0];
  if (!sameEvents(batch, lastBatch)) {
    lastBatch = batch;
    lastFrame = `[${batch.join(",")}]`;
  }
  return lastFrame;
}

function sameEvents(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/** Options of a {@linkcode Connection}. */
export interface ConnectionOptions {
  /** The wire format: the original `text` protocol or `v2` (subprotocol `chat.v2`). */
  readonly protocol: "text" | "v2";
  readonly limits: Pick<ConnectionLimits, "maxFrameBytes" | "maxBufferedBytes">;
  readonly metrics: Metrics;
  /** The name asked for in the upgrade request (`?name=`). */
  readonly name?: string;
  /** Called once the socket has closed, to give back its admission place. */
  readonly onClosed?: () => void;
}

/**
 * One socket's part in the chat, and the {@linkcode Sink} its user's events
 * go to. Sending never waits for the peer: the socket buffers, and a peer
 * whose buffer passes `max_buffered_bytes` is cut off so it cannot hold up or
 * bloat the server.
 */
export class Connection implements Sink {
  readonly #socket: SocketLike;
  readonly #chatroom: Chatroom;
  readonly #options: ConnectionOptions;
  /** v2 frames waiting for the end of this turn of the event loop. */
  #batch: string[] = [];
  #writes = 0;
  /** Whether this socket speaks the original text protocol (else v2). */
  readonly #text: boolean;
  /**
   * Set once the socket is closing, so sends stop; kept here because reading
   * the socket's readyState is a checked call on every one of them.
   */
  #closing = false;
  #user: User | undefined;

  constructor(socket: SocketLike, chatroom: Chatroom, options: ConnectionOptions) {
    this.#socket = socket;
    this.#chatroom = chatroom;
    this.#options = options;
    this.#text = options.protocol === "text";
  }

  /**
   * Call when the socket opens. A text-protocol client joins at once; a v2
   * client first says `hello` or `resume`, so that a resumed session does not
   * start as a new one.
   */
  opened(): void {
    this.#options.metrics.connectionsAccepted.inc();
    if (this.#options.protocol === "text") {
      this.#user = this.#chatroom.connect(this, { name: this.#options.name });
    }
  }

  /** Handles one frame from the client. */
  received(data: string | ArrayBuffer): void {
    this.#options.metrics.messagesReceived.inc();
    const { maxFrameBytes } = this.#options.limits;
    const tooBig = typeof data === "string"
      ? exceedsBytes(data, maxFrameBytes)
      : data.byteLength > maxFrameBytes;
    if (tooBig) return this.#cutOff(CLOSE_MESSAGE_TOO_BIG, "frame_too_large");
    if (this.#options.protocol === "v2") return this.#receivedV2(data);
    if (this.#user === undefined) return;
    if (typeof data === "string") this.#chatroom.receive(this.#user, data);
    else this.#chatroom.receiveBinary(this.#user);
  }

  #receivedV2(data: string | ArrayBuffer): void {
    const inputs = typeof data === "string" ? decodeV2Frame(data) : undefined;
    let user = this.#user;
    if (user === undefined) {
      // A session starts with hello or resume; any other first request starts a plain one.
      const first = inputs?.[0];
      const start = first?.kind === "start" ? first.start : { name: this.#options.name };
      user = this.#user = this.#chatroom.connect(this, start);
      if (first?.kind === "start") inputs!.shift();
    }
    if (inputs === undefined) return this.#chatroom.receiveBinary(user);
    for (const input of inputs) {
      if (input.kind === "request") this.#chatroom.handle(user, input.request);
      else if (input.kind === "invalid") this.#chatroom.refuse(user, input.reason);
      else this.#chatroom.refuse(user, "the session has already started");
    }
  }

  /** Leaves the chat; call when the socket has closed. */
  closed(): void {
    this.#closing = true;
    if (this.#user !== undefined) this.#chatroom.disconnect(this.#user);
    this.#options.onClosed?.();
  }

  /**
   * Sends an event: at once in the text protocol; in v2, queued with the
   * others of this turn of the event loop and sent as one frame (a JSON array
   * when there are several), so a busy room costs far fewer sends.
   */
  send(event: ChatEvent): void {
    if (this.#closing) return;
    this.#options.metrics.messagesDelivered.inc();
    if (this.#text) return this.#write(encodeTextFrame(event));
    this.#batch.push(encodeV2Frame(event));
    queuedSinceLook = true;
    if (this.#batch.length >= MAX_BATCH) return this.flush();
    if (this.#batch.length > 1) return;
    waiting.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flushWaiting);
    }
  }

  /** Sends the queued v2 events. */
  flush(): void {
    const batch = this.#batch;
    if (batch.length === 0 || this.#closing) return;
    this.#batch = [];
    this.#write(batchFrame(batch));
  }

  #write(frame: string): void {
    this.#socket.send(frame);
    // Reading bufferedAmount is a call into the runtime: every few frames is
    // enough, as each is at most max_frame_bytes.
    if (++this.#writes % BUFFER_CHECK_EVERY !== 0) return;
    if (this.#socket.bufferedAmount > this.#options.limits.maxBufferedBytes) {
      this.#cutOff(CLOSE_TRY_AGAIN_LATER, "slow_consumer");
    }
  }

  /** Sends what is queued, then closes the socket; nothing more is sent. */
  close(code: number, reason: string): void {
    this.flush();
    this.#shut(code, reason);
  }

  #shut(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#socket.close(code, reason);
  }

  #cutOff(code: number, reason: "frame_too_large" | "slow_consumer"): void {
    if (this.#closing) return;
    const user = this.#user;
    log.info("Closing user {id} with {code}: {reason}", { id: user?.id, code, reason });
    this.#options.metrics.connectionsClosed.inc(reason);
    // What is queued is dropped: this peer broke a rule or cannot keep up.
    this.#shut(code, reason.replaceAll("_", " "));
    // The user leaves now rather than when the close handshake ends, which a
    // stalled peer can delay for long; after the current broadcast, so that
    // everyone gets its events in the same order.
    if (user !== undefined) queueMicrotask(() => this.#chatroom.disconnect(user));
  }
}

/** Joins a freshly upgraded socket to the chat for as long as it stays open. */
export function serveChatSocket(
  socket: WebSocket,
  chatroom: Chatroom,
  options: ConnectionOptions,
): void {
  const connection = new Connection(socket, chatroom, options);
  socket.binaryType = "arraybuffer";
  socket.addEventListener("open", () => connection.opened());
  socket.addEventListener("message", (event) => connection.received(event.data));
  socket.addEventListener("close", () => connection.closed());
}
