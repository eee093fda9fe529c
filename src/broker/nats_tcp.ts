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

/** Bytes one read takes at most. */
const READ_SIZE = 64 * 1024;
/** The server's greeting must fit in this (its INFO line is well under 4 KiB). */
const MAX_INFO_BYTES = 64 * 1024;

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
  #writing: Promise<void> | undefined;
  readonly #closed = Promise.withResolvers<void | Error>();

  get isClosed(): boolean {
    return this.#done;
  }

  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    try {
      const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
      this.#conn = tcp;
      tcp.setNoDelay(true);
      const info = await this.#readGreeting(tcp);
      checkOptions(info, options);
      const wantsTls = options.tls !== undefined && options.tls !== null;
      if (info.tls_required === true || (wantsTls && info.tls_available === true)) {
        const tls = await Deno.startTls(tcp, {
          hostname: server.tlsName || server.hostname,
          caCerts: options.tls?.ca === undefined ? undefined : [options.tls.ca],
        });
        this.#conn = tls;
        // Now, not at the first read: a certificate refused is a failed connect.
        await tls.handshake();
        this.#encrypted = true;
      }
      if (this.#done) throw new errors.ConnectionError("the connection was closed while opening");
      this.#connected = true;
    } catch (error) {
      this.#conn?.close();
      this.#conn = undefined;
      if (error instanceof Deno.errors.ConnectionRefused) {
        throw new errors.ConnectionError("connection refused", { cause: error });
      }
      throw error;
    }
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
    this.#outbox.push(frame);
    this.#writing ??= this.#write(this.#conn);
  }

  /** Writes what waits, frames queued meanwhile joined into one write. */
  async #write(conn: Deno.Conn): Promise<void> {
    try {
      while (this.#outbox.length > 0 && !this.#done) {
        const frames = this.#outbox;
        this.#outbox = [];
        let data = frames.length === 1 ? frames[0] : DataBuffer.concat(...frames);
        while (data.length > 0) data = data.subarray(await conn.write(data));
      }
    } catch (error) {
      // A write that fails means the link is gone: the library reconnects.
      if (!this.#done) this.#finish(asError(error));
    } finally {
      this.#writing = undefined;
    }
  }

  /** Closes after what waits is written (no error) or at once (an error). */
  async close(error?: Error): Promise<void> {
    if (this.#done) return;
    // A link that never opened is not reported closed: the library is still dialling.
    if (!this.#connected) return this.discard();
    if (error === undefined) await this.#writing;
    this.#finish(error);
    await this.#closed.promise;
  }

  /** Drops the link so that the library connects again. */
  disconnect(): void {
    this.close().catch(() => {});
  }

  closed(): Promise<void | Error> {
    return this.#closed.promise;
  }

  /** Gives up a connection whose handshake failed. */
  discard(): void {
    this.#done = true;
    this.#release();
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.closeError = error;
    this.#release();
    this.#closed.resolve(error);
  }

  #release(): void {
    try {
      this.#conn?.close();
    } catch {
      // Already closed by the peer: nothing is left to release.
    }
    this.#conn = undefined;
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
