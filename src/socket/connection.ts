/**
 * The boundary between a WebSocket and the chat: frames in are decoded into
 * requests for the {@linkcode Chatroom}, events out are encoded into frames.
 * Transport rules live here: close codes, the frame size limit and the
 * slow-consumer cut-off.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Identity, TokenVerifier } from "../auth/tokens.ts";
import type { Chatroom, User } from "../chat/mod.ts";
import type { ChatEvent, CloseReason, Place, SessionStart, Sink } from "../vocabulary/events.ts";
import type { ClientRequest, RequestProblem } from "../vocabulary/requests.ts";
import type { ConnectionLimits } from "../config/mod.ts";
import type { Metrics } from "../metrics.ts";
import { TokenBucket } from "../limits.ts";
import type { Outbox } from "./outbox.ts";
import type { DeviceRelay } from "./relay.ts";
import type { DeviceLink } from "../broker/types.ts";
import { CLOSE_CODES, CLOSE_REASONS } from "./close.ts";
import { decodeV1Frame } from "../protocol/v1.ts";
import { decodeV2Frame, type V2Input } from "../protocol/v2.ts";

/** The part of a WebSocket the chat uses, so tests can pass a fake. */
export interface SocketLike {
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const log = getLogger(["chat", "connection"]);

const utf8 = new TextEncoder();

/** Whether `text` takes more than `max` bytes in UTF-8, without encoding it when length decides. */
function exceedsBytes(text: string, max: number): boolean {
  // UTF-8 takes at least one byte and at most three per UTF-16 code unit.
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return utf8.encode(text).length > max;
}

/** Frames between two looks at a socket's unsent data. */
const BUFFER_CHECK_EVERY = 8;

/** Most events one v2 frame carries; a longer queue goes out in several. */
const MAX_BATCH = 256;

const BINARY: ClientRequest = { type: "invalid", problem: { code: "binary_unsupported" } };

/** Options of a {@linkcode Connection}. */
export interface ConnectionOptions {
  /** The wire format: the original `v1` text protocol or `v2` (subprotocol `chat.v2`). */
  readonly protocol: "v1" | "v2";
  readonly limits: Pick<
    ConnectionLimits,
    "maxFrameBytes" | "maxBufferedBytes" | "maxInboundBytesPerSecond"
  >;
  readonly metrics: Metrics;
  /** Encodes and batches what this server's connections send. */
  readonly outbox: Outbox;
  /** The name asked for in the upgrade request (`?name=`). */
  readonly name?: string;
  /** The room asked for in the upgrade request (`?room=`); the lobby by default. */
  readonly room?: string;
  /** The client's address. */
  readonly address?: string;
  /** Token mode: who the upgrade's `?token=` says the client is... */
  readonly identity?: Identity;
  /** ...and that token, for another instance to check again when the device is relayed there. */
  readonly token?: string;
  /** ...or, for a v2 client that sends its token in `hello` or `resume`, what checks it. */
  readonly verifier?: TokenVerifier;
  /**
   * The socket's place in the server's limits: given back when the socket
   * closes, unless its session lingers and keeps it.
   */
  readonly place?: Place;
  /**
   * Token mode, in a cluster: where a device goes whose account's session
   * is live on another instance (none for a device relayed here).
   */
  readonly relay?: DeviceRelay;
}

/** Frames a client may send while its session's start waits; later ones are dropped. */
const MAX_FRAMES_WAITING = 16;
/** Token mode: how long a v2 socket may stay open before its first frame. */
const HELLO_DEADLINE_MS = 10_000;

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
  readonly #outbox: Outbox;
  /** Whether this socket speaks v2, which batches its events. */
  readonly #v2: boolean;
  /** v2 events waiting for the end of this turn of the event loop. */
  #batch: string[] = [];
  #writes = 0;
  /**
   * Set once the socket is closing, so sends stop; kept here because reading
   * the socket's readyState is a checked call on every one of them.
   */
  #closing = false;
  /** Set once the socket's end was handled, so its place is given back once. */
  #ended = false;
  #user: User | undefined;
  /** Frames that came while the start waits: for a token's check, or another instance. */
  #waiting: (string | ArrayBuffer)[] | undefined;
  /** Set when the device is relayed to its session's instance: frames go there and back. */
  #link: DeviceLink | undefined;
  /** Token mode, v2: ends the wait for the first frame. */
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * What the client may still send, in UTF-16 code units of text (the size
   * of the string the runtime hands us, which is what reading it costs) and
   * bytes of binary: `max_inbound_bytes_per_s`, four largest frames at once.
   */
  readonly #inbound: TokenBucket;

  constructor(socket: SocketLike, chatroom: Chatroom, options: ConnectionOptions) {
    this.#socket = socket;
    this.#chatroom = chatroom;
    this.#options = options;
    this.#outbox = options.outbox;
    this.#v2 = options.protocol === "v2";
    const { maxInboundBytesPerSecond: rate, maxFrameBytes } = options.limits;
    this.#inbound = new TokenBucket(
      { rate, burst: Math.max(rate, 4 * maxFrameBytes) },
      performance.now(),
    );
  }

  /**
   * Call when the socket opens. A text-protocol client joins at once; a v2
   * client first says `hello` or `resume`, so that a resumed session does not
   * start as a new one.
   */
  opened(): void {
    this.#options.metrics.connectionsAccepted.inc();
    if (this.#v2 && this.#options.verifier !== undefined && this.#options.identity === undefined) {
      // Token mode: a socket that never says hello does not keep its place.
      this.#helloTimer = setTimeout(() => {
        if (this.#user === undefined && this.#waiting === undefined && this.#link === undefined) {
          this.#refuse(`no hello with a token came within ${HELLO_DEADLINE_MS / 1000} s`);
        }
      }, HELLO_DEADLINE_MS);
    }
    if (!this.#v2) {
      const { name, room, address, identity } = this.#options;
      this.#begin({ name, room, address, identity }, undefined, []);
    }
  }

  /**
   * Starts the session with what is left of the first frame (`rest`); or,
   * when a verified account's live session is on another instance, relays
   * this device there, starting with the frames that opened it (`first`,
   * read there again, token and all). Frames that came meanwhile follow.
   */
  #begin(start: SessionStart, first: string | ArrayBuffer | undefined, rest: readonly V2Input[]) {
    const { relay, protocol, address, room, token } = this.#options;
    const joining = start.identity === undefined || relay === undefined
      ? "not_live"
      : relay.join(start.identity.name, { protocol, address, room, token }, {
        // What the session's instance sends: frames to write, and the close.
        frame: (data) => {
          if (typeof data === "string" && !this.#closing) this.#write(data);
        },
        ended: (code, reason) => this.#shut(code, reason),
      });
    const go = (joined: DeviceLink | "not_live" | "unavailable") => {
      const waiting = this.#waiting ?? [];
      this.#waiting = undefined;
      if (typeof joined === "object") {
        if (this.#closing) return joined.close(1000, "");
        this.#link = joined;
        for (const data of first === undefined ? waiting : [first, ...waiting]) joined.send(data);
        return;
      }
      if (this.#closing) return;
      // Held live elsewhere, yet not taken there: starting here would take it from its devices.
      if (joined === "unavailable") return this.#chatroom.tryLater(this);
      const user = this.#start(start);
      if (user === undefined) return;
      for (const input of rest) this.#handleV2(user, input);
      for (const data of waiting) this.#read(data);
    };
    if (joining === "not_live") return go(joining);
    this.#waiting ??= [];
    joining.then(go).catch((error: unknown) => {
      log.error("Cannot start a session: {error}", { error });
      this.close("retry");
    });
  }

  /** Starts the session. */
  #start(start: SessionStart): User | undefined {
    return this.#user = this.#chatroom.connect(this, { ...start, place: this.#options.place });
  }

  /** Handles one frame from the client: decoded, then handed to the chat request by request. */
  received(data: string | ArrayBuffer): void {
    // Closing (refused, or told to try again): what was on its way is not read, nor relayed.
    if (this.#closing) return;
    this.#options.metrics.messagesReceived.inc();
    const { maxFrameBytes } = this.#options.limits;
    const tooBig = typeof data === "string"
      ? exceedsBytes(data, maxFrameBytes)
      : data.byteLength > maxFrameBytes;
    if (tooBig) return this.#cutOff(CLOSE_CODES.frameTooLarge, "frame_too_large");
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (!this.#inbound.take(performance.now(), size)) {
      return this.#cutOff(CLOSE_CODES.flood, "inbound_rate");
    }
    if (this.#link !== undefined) return this.#link.send(data);
    if (this.#waiting !== undefined) {
      if (this.#waiting.length < MAX_FRAMES_WAITING) this.#waiting.push(data);
      return;
    }
    this.#read(data);
  }

  /** Reads a frame of a connection served here. */
  #read(data: string | ArrayBuffer): void {
    if (this.#v2) return this.#receivedV2(data);
    if (this.#user === undefined) return;
    this.#chatroom.handle(
      this.#user,
      typeof data === "string" ? decodeV1Frame(data) : BINARY,
      this,
    );
  }

  #receivedV2(data: string | ArrayBuffer): void {
    const inputs: readonly V2Input[] = typeof data === "string"
      ? decodeV2Frame(data)
      : [{ kind: "request", request: BINARY }];
    const user = this.#user;
    if (user === undefined) {
      // A session starts with hello or resume; any other first request starts a plain one.
      const opening = inputs[0];
      // What the upgrade asked for (?name=, ?room=) holds where the first frame says nothing.
      const { name, room, address, identity, verifier } = this.#options;
      const start: SessionStart = opening?.kind === "start"
        ? {
          ...opening.start,
          name: opening.start.name ?? name,
          room: opening.start.room ?? room,
          address,
          identity,
        }
        : { name, room, address, identity, resumable: true };
      if (identity === undefined && verifier !== undefined) {
        const request = opening?.kind === "request" ? opening.request : undefined;
        // A hello or resume that could not be read says why, rather than that it had no token.
        if (request?.type === "invalid" && request.problem.code === "bad_request") {
          return this.#refuse(request.problem);
        }
        const auth = opening?.kind === "start" ? opening.auth : undefined;
        const rest = inputs.slice(opening?.kind === "start" ? 1 : 0);
        return this.#verify(verifier, auth, start, data, rest);
      }
      return this.#begin(start, data, inputs.slice(opening?.kind === "start" ? 1 : 0));
    }
    for (const input of inputs) this.#handleV2(user, input);
  }

  #handleV2(user: User, input: V2Input): void {
    this.#chatroom.handle(
      user,
      input.kind === "request" ? input.request : {
        type: "invalid",
        problem: { code: "bad_request", reason: "the session has already started" },
      },
      this,
    );
  }

  /**
   * Token mode, v2: checks the token of `hello` or `resume`, then starts the
   * session as the user it names and handles what came meanwhile, in order.
   */
  #verify(
    verifier: TokenVerifier,
    auth: string | undefined,
    start: SessionStart,
    first: string | ArrayBuffer,
    rest: readonly V2Input[],
  ): void {
    if (auth === undefined) {
      return this.#refuse('a token is required: send it as "auth" in hello or resume');
    }
    this.#waiting = [];
    verifier.verify(auth).then((identity) => {
      if (this.#closing) return;
      // The chat says why, and closes, when it refuses the session.
      this.#begin({ ...start, identity }, first, rest);
    }, (error: unknown) => {
      this.#refuse(error instanceof Error ? error.message : "the token could not be checked");
    }).catch((error: unknown) => {
      log.error("Cannot start a session after its token was checked: {error}", { error });
      this.#refuse("the session could not be started");
    });
  }

  /**
   * Token mode: says why the client may not start a session (its token, or
   * a first frame that could not be read), and closes with 4001.
   */
  #refuse(reason: string | RequestProblem): void {
    if (this.#closing) return;
    log.info("Refused a session from {address}: {reason}", {
      address: this.#options.address,
      reason: typeof reason === "string" ? reason : reason.code,
    });
    this.#options.metrics.connectionsClosed.inc("unauthorized");
    this.#chatroom.refuse(this, reason);
    this.close("unauthorized");
  }

  /** Tells the chat this connection is gone; call when the socket has closed. */
  closed(): void {
    // Deno may report a socket's end twice (a ping timeout, then the close): once is enough.
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#helloTimer);
    this.#closing = true;
    const { place } = this.#options;
    this.#link?.close(1000, "");
    // A session that lingers keeps the place; otherwise it is given back now.
    if (this.#user !== undefined) this.#chatroom.detach(this.#user, this, place);
    place?.release();
  }

  /**
   * Sends an event: at once in the text protocol; in v2, queued with the
   * others of this turn of the event loop and sent as one frame (a JSON array
   * when there are several), so a busy room costs far fewer sends.
   */
  send(event: ChatEvent, own = false): void {
    // The text protocol has no line for someone typing.
    if (this.#closing || (!this.#v2 && event.type === "typing")) return;
    this.#options.metrics.messagesDelivered.inc();
    if (!this.#v2) return this.#write(this.#outbox.v1Frame(event, own));
    const batch = this.#batch;
    batch.push(this.#outbox.v2Event(event));
    if (batch.length >= MAX_BATCH) return this.flush();
    this.#outbox.queued(this, batch.length === 1);
  }

  /** Sends the queued v2 events. */
  flush(): void {
    const batch = this.#batch;
    if (batch.length === 0 || this.#closing) return;
    this.#batch = [];
    this.#write(this.#outbox.batchFrame(batch));
  }

  #write(frame: string): void {
    this.#socket.send(frame);
    // Reading bufferedAmount is a call into the runtime: every few frames is
    // enough, as each is at most max_frame_bytes.
    if (++this.#writes % BUFFER_CHECK_EVERY !== 0) return;
    if (this.#socket.bufferedAmount > this.#options.limits.maxBufferedBytes) {
      this.#cutOff(CLOSE_CODES.slowConsumer, "slow_consumer");
    }
  }

  /** Sends what is queued, then closes the socket with the code for `reason`. */
  close(reason: CloseReason): void {
    this.flush();
    this.#shut(CLOSE_CODES[reason], CLOSE_REASONS[reason]);
  }

  #shut(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    try {
      this.#socket.close(code, reason);
    } catch {
      // A reason the socket will not carry (another instance's, relayed) leaves the code.
      this.#socket.close(code);
    }
    // A relayed device leaves its session now, not once its socket's close handshake ends.
    this.#link?.close(1000, "");
  }

  #cutOff(code: number, reason: "frame_too_large" | "slow_consumer" | "inbound_rate"): void {
    if (this.#closing) return;
    const user = this.#user;
    log.info("Closing user {id} with {code}: {reason}", { id: user?.id, code, reason });
    this.#options.metrics.connectionsClosed.inc(reason);
    // What is queued is dropped: this peer broke a rule or cannot keep up.
    this.#shut(code, reason.replaceAll("_", " "));
    // The user leaves now rather than when the close handshake ends, which a
    // stalled peer can delay for long; after the current broadcast, so that
    // everyone gets its events in the same order.
    if (user !== undefined) {
      queueMicrotask(() => this.#chatroom.detach(user, this, this.#options.place));
    }
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
