/**
 * NATS over TCP (`nats://` and `tls://` URLs, the client port 4222 every NATS
 * deployment has) for Deno, with Nagle's algorithm off.
 *
 * The NATS client library's own Deno transport lives on JSR, which these
 * builds cannot reach, and its WebSocket transport rides on Deno's WebSocket
 * client, which leaves Nagle's algorithm on: a small publish waiting behind
 * one not yet acknowledged then stalls until the peer's delayed ACK (40 ms on
 * Linux), which cut three instances' deliveries to a quarter in
 * `deno task bench --cluster`. This transport plugs into the library through
 * its transport interface (`@nats-io/nats-core/internal`), so everything
 * above the socket (protocol, reconnects, JetStream) stays the library's.
 *
 * @module
 */

import {
  checkOptions,
  type ConnectionOptions,
  DataBuffer,
  errors,
  extractProtocolMessage,
  INFO,
  NatsConnectionImpl,
  type Server,
  setTransportFactory,
  type Transport,
} from "@nats-io/nats-core/internal";
import { hasWsProtocol, type NatsConnection, type ServerInfo, wsconnect } from "@nats-io/nats-core";

/** Bytes one read takes at most, and about what one write joins. */
const READ_SIZE = 64 * 1024;
/** The server's greeting must fit in this (its INFO line is well under 4 KiB). */
const MAX_INFO_BYTES = 64 * 1024;
/**
 * Bytes waiting, at most, while no write has gone through for STALL_MS: the
 * server no longer reads, so the link is given up and the library connects
 * again (its stale-connection check would take two ping intervals). A large
 * backlog that is being written is not cut short.
 */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const STALL_MS = 5000;
/** How long a close waits for what is queued to be written. */
const CLOSE_FLUSH_MS = 2000;

/** One connection to one NATS server over TCP, optionally upgraded to TLS. */
class TcpTransport implements Transport {
  readonly lang = "nats.js";
  readonly version = "chat-server-tcp";
  closeError: Error | undefined;
  #conn: Deno.Conn | undefined;
  #encrypted = false;
  #connected = false;
  #done = false;
  /** What arrived with the greeting, handed to the protocol reader first. */
  #greeting: Uint8Array = new Uint8Array();
  /** Frames waiting for the socket, written in order by one writer at a time. */
  #outbox: Uint8Array[] = [];
  #queuedBytes = 0;
  /** When a write last went through, or the queue last started from empty. */
  #progressAt = 0;
  #writing: Promise<void> | undefined;
  /** The socket of a dial in progress, so that giving the dial up closes it. */
  #opening: Deno.Conn | undefined;
  readonly #closed = Promise.withResolvers<void | Error>();

  get isClosed(): boolean {
    return this.#done;
  }

  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    const { ca, ...unsupported } = options.tls ?? {};
    for (const [option, value] of Object.entries(unsupported)) {
      if (value !== undefined) {
        throw errors.InvalidArgumentError.format(`tls.${option}`, "is not supported");
      }
    }
    let conn: Deno.Conn | undefined;
    try {
      const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
      conn = this.#opening = tcp;
      this.#checkOpening();
      tcp.setNoDelay(true);
      const info = await this.#readGreeting(tcp);
      this.#checkOpening();
      checkOptions(info, options);
      const wantsTls = options.tls !== undefined && options.tls !== null;
      if (info.tls_required === true || (wantsTls && info.tls_available === true)) {
        const tls = await Deno.startTls(tcp, {
          hostname: server.tlsName || server.hostname,
          caCerts: ca === undefined ? undefined : [ca],
        });
        conn = this.#opening = tls;
        // Now, not at the first read: a certificate refused is a failed connect.
        await tls.handshake();
        this.#checkOpening();
        this.#encrypted = true;
      }
      this.#conn = conn;
      this.#opening = undefined;
      this.#connected = true;
    } catch (error) {
      this.#opening = undefined;
      closeQuietly(conn);
      if (error instanceof Deno.errors.ConnectionRefused) {
        throw new errors.ConnectionError("connection refused", { cause: error });
      }
      throw error;
    }
  }

  /** A dial the library gave up on (it timed out) must not go on in the background. */
  #checkOpening(): void {
    if (this.#done) throw new errors.ConnectionError("the connection was given up while opening");
  }

  /** Reads up to the end of the server's INFO line, keeping the bytes for the protocol reader. */
  async #readGreeting(conn: Deno.Conn): Promise<ServerInfo> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const buffer = new Uint8Array(READ_SIZE);
    while (size < MAX_INFO_BYTES) {
      const read = await conn.read(buffer);
      if (read === null) throw new errors.ConnectionError("the server closed the connection");
      chunks.push(buffer.slice(0, read));
      size += read;
      const received = DataBuffer.concat(...chunks);
      const line = extractProtocolMessage(received);
      if (line === "") continue;
      const match = INFO.exec(line);
      if (match === null) throw new errors.ConnectionError("unexpected response from server");
      this.#greeting = received;
      // Read as the library reads it: the fields checked below are optional booleans.
      return JSON.parse(match[1]) as ServerInfo;
    }
    throw new errors.ConnectionError("the server's greeting is too long");
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    const conn = this.#conn;
    if (conn === undefined) return;
    yield this.#greeting;
    const buffer = new Uint8Array(READ_SIZE);
    while (!this.#done) {
      let read: number | null;
      try {
        read = await conn.read(buffer);
      } catch (error) {
        if (!this.#done) this.#finish(asError(error));
        return;
      }
      if (read === null) {
        this.#finish(undefined);
        return;
      }
      yield buffer.slice(0, read);
    }
  }

  isEncrypted(): boolean {
    return this.#connected && this.#encrypted;
  }

  send(frame: Uint8Array): void {
    if (this.#done || !this.#connected || this.#conn === undefined) return;
    if (this.#queuedBytes === 0) this.#progressAt = Date.now();
    this.#queuedBytes += frame.length;
    if (this.#queuedBytes > MAX_QUEUED_BYTES && Date.now() - this.#progressAt > STALL_MS) {
      return this.#finish(new errors.ConnectionError("the server stopped reading"));
    }
    this.#outbox.push(frame);
    this.#writing ??= this.#write(this.#conn);
  }

  /** Writes what waits in order, small frames joined into writes of about READ_SIZE. */
  async #write(conn: Deno.Conn): Promise<void> {
    try {
      while (this.#outbox.length > 0 && !this.#done) {
        let data = this.#takeChunk();
        this.#queuedBytes -= data.length;
        while (data.length > 0) {
          data = data.subarray(await conn.write(data));
          this.#progressAt = Date.now();
        }
      }
    } catch (error) {
      // A write that fails means the link is gone: the library reconnects.
      if (!this.#done) this.#finish(asError(error));
    } finally {
      this.#writing = undefined;
    }
  }

  /** The next frames of the outbox, joined up to about READ_SIZE bytes (a larger frame alone). */
  #takeChunk(): Uint8Array {
    let count = 0;
    let size = 0;
    while (count < this.#outbox.length && (count === 0 || size < READ_SIZE)) {
      size += this.#outbox[count++].length;
    }
    const frames = this.#outbox.splice(0, count);
    if (frames.length === 1) return frames[0];
    const chunk = new Uint8Array(size);
    let offset = 0;
    for (const frame of frames) {
      chunk.set(frame, offset);
      offset += frame.length;
    }
    return chunk;
  }

  /**
   * Closes after what waits is written (no error), or at once (an error).
   * The wait is bounded: a server that stopped reading does not hold a close.
   */
  async close(error?: Error): Promise<void> {
    if (this.#done) return;
    // A link that never opened is not reported closed: the library is still dialling.
    if (!this.#connected) return this.discard();
    const writing = this.#writing;
    if (error === undefined && writing !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        writing,
        new Promise((resolve) => timer = setTimeout(resolve, CLOSE_FLUSH_MS)),
      ]);
      clearTimeout(timer);
    }
    this.#finish(error);
    await this.#closed.promise;
  }

  /**
   * Drops the link at once so that the library connects again: it asks
   * for this when the link went stale, when nothing written may still go out.
   */
  disconnect(): void {
    this.#finish(undefined);
  }

  closed(): Promise<void | Error> {
    return this.#closed.promise;
  }

  /** Gives up a connection whose handshake failed. */
  discard(): void {
    this.#done = true;
    this.#release();
    closeQuietly(this.#opening);
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.closeError = error;
    this.#release();
    this.#closed.resolve(error);
  }

  #release(): void {
    closeQuietly(this.#conn);
    this.#conn = undefined;
  }
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Closed already (by the peer, or by giving the dial up): nothing is left to release.
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Connects with `options.servers`: `nats://` and `tls://` URLs over TCP,
 * `ws://` and `wss://` through the library's WebSocket transport. The
 * transport is the process's (the library keeps one), so one process talks
 * to NATS one way.
 */
export function connectNats(options: ConnectionOptions): Promise<NatsConnection> {
  if (hasWsProtocol(options)) return wsconnect(options);
  const servers = typeof options.servers === "string" ? [options.servers] : options.servers ?? [];
  const tls = servers.some((server) => /^tls:/i.test(server));
  setTransportFactory({ factory: () => new TcpTransport(), defaultPort: 4222 });
  return NatsConnectionImpl.connect(tls ? { ...options, tls: options.tls ?? {} } : options);
}
