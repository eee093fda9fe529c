/** Real-socket helpers for the end-to-end tests: a server on port 0 and a WebSocket client. */

import { delay } from "@std/async/delay";
import type { TokenVerifier } from "../../src/auth/tokens.ts";
import { LocalBroker } from "../../src/broker/local.ts";
import { Chatroom } from "../../src/chat/mod.ts";
import type { ChatConfig, ConnectionLimits, FloodLimits } from "../../src/config/mod.ts";
import { createMetrics, type Metrics } from "../../src/metrics.ts";
import { createHandler } from "../../src/http/handler.ts";
import { loadStaticFiles, type StaticFiles } from "../../src/http/static.ts";
import { TEST_CONFIG } from "../_fakes.ts";

/** One frame of the original protocol, as sent by the server. */
export interface Frame {
  body: string;
  origin: string;
  sentAt: string;
}

/** How long a test waits for an expected event before it fails. */
export const EVENT_TIMEOUT_MS = 5000;

/** Resolves with `promise`, or rejects after `ms` with `what` in the message. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = EVENT_TIMEOUT_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One event of protocol v2. */
export type V2Frame = { type: string } & Record<string, unknown>;

/**
 * A WebSocket client that queues events so tests can await them in order.
 * A frame holding a JSON array (a v2 batch) is queued event by event.
 */
export class TestClient<F extends object = Frame> {
  readonly socket: WebSocket;
  /** Resolves when the socket closes, with the close code. */
  readonly closed: Promise<CloseEvent>;
  readonly #frames: F[] = [];
  #wake: (() => void) | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.addEventListener("message", (event) => {
      const data: F | F[] = JSON.parse(event.data);
      if (Array.isArray(data)) this.#frames.push(...data);
      else this.#frames.push(data);
      this.#wake?.();
    });
    this.closed.then(() => this.#wake?.());
  }

  /**
   * Opens a connection, offering `protocol` when given, and waits until it
   * is open; `headers` are sent with the upgrade (`X-Forwarded-For`, say).
   */
  static async connect<F extends object = Frame>(
    url: string | URL,
    protocol?: string,
    headers?: Record<string, string>,
  ): Promise<TestClient<F>> {
    const socket = new WebSocket(
      url,
      protocol === undefined ? { headers } : { protocols: [protocol], headers },
    );
    const client = new TestClient<F>(socket);
    await within(
      new Promise((resolve, reject) => {
        socket.addEventListener("open", resolve);
        socket.addEventListener("error", () => reject(new Error(`Cannot connect to ${url}`)));
      }),
      `the connection to ${url}`,
    );
    return client;
  }

  send(text: string): void {
    this.socket.send(text);
  }

  /** The next frame, whatever it is. */
  next(): Promise<F> {
    return this.waitFor(() => true, "the next frame");
  }

  /** The next text-protocol frame's `[origin, body]`, for exact comparisons. */
  async nextPair(this: TestClient<Frame>): Promise<[string, string]> {
    const frame = await this.next();
    return [frame.origin, frame.body];
  }

  /** Skips frames until one matches, and returns it; fails after `timeoutMs`. */
  waitFor(
    match: (frame: F) => boolean,
    what = "a matching frame",
    timeoutMs = EVENT_TIMEOUT_MS,
  ): Promise<F> {
    const search = async (): Promise<F> => {
      while (true) {
        const frame = this.#frames.shift();
        if (frame !== undefined) {
          if (match(frame)) return frame;
          continue;
        }
        if (this.socket.readyState === WebSocket.CLOSED) {
          throw new Error(`Socket closed while waiting for ${what}`);
        }
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    };
    return within(search(), what, timeoutMs);
  }

  /** Frames received and not yet read. */
  get pending(): readonly F[] {
    return this.#frames;
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await within(this.closed, "the socket to close");
  }
}

/** A chat server on a free loopback port, for one test. */
export interface TestServer {
  readonly url: string;
  readonly httpUrl: string;
  readonly port: number;
  readonly chatroom: Chatroom;
  readonly metrics: Metrics;
  /** Connects a client and reads its welcome frame; returns it with its name. */
  join(query?: string): Promise<{ client: TestClient; name: string }>;
  /** Connects a v2 client, says hello and reads its welcome. */
  joinV2(name?: string): Promise<{ client: TestClient<V2Frame>; welcome: V2Frame }>;
  /** Closes every client it opened, then the server. */
  close(): Promise<void>;
}

const STATIC_FILES: StaticFiles = await loadStaticFiles();

/** Settings that differ from the shipped test environment. */
/** Flood control out of the way, for tests that send fast from one address. */
export const FLOOD_OFF: FloodLimits = {
  rate: 100_000,
  burst: 100_000,
  disconnectAfter: 60,
  addressRate: 100_000,
  addressBurst: 100_000,
  roomRate: 1_000_000,
  roomBurst: 1_000_000,
  serverRate: 1_000_000,
  serverBurst: 1_000_000,
};

export interface TestServerOptions {
  chat?: Partial<ChatConfig>;
  limits?: Partial<ConnectionLimits>;
  /** Token mode's verifier; open mode without. */
  verifier?: TokenVerifier;
  /** Open mode: the operator password of `!op`. */
  operatorPassword?: string;
  /** Seconds before a token expires that its user is warned. */
  expiryWarning?: number;
  /** Token mode: connections one account may have open at once. */
  maxDevices?: number;
  /** Keys of the server API. */
  apiKeys?: string[];
  /** Milliseconds an API request's body may take to arrive. */
  apiBodyTimeout?: number;
}

/** Starts the real handler with `Deno.serve` on 127.0.0.1, port 0. */
export function startTestServer(options: TestServerOptions = {}): TestServer {
  const metrics = createMetrics();
  const { verifier } = options;
  const chatroom = new Chatroom({
    config: { ...TEST_CONFIG.chat, ...options.chat },
    broker: new LocalBroker(),
    metrics,
    auth: {
      tokenMode: verifier !== undefined,
      verify: verifier === undefined ? undefined : (token) => verifier.verify(token),
      expiryWarning: options.expiryWarning ?? 60,
      maxDevices: options.maxDevices,
      operatorPassword: options.operatorPassword,
    },
  });
  const limits = { ...TEST_CONFIG.server.limits, ...options.limits };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createHandler({
      chatroom,
      limits,
      metrics,
      staticFiles: STATIC_FILES,
      verifier,
      apiKeys: options.apiKeys,
      apiBodyTimeout: options.apiBodyTimeout,
    }),
  );
  // As the entry point does: dropped sessions end once session_linger passes.
  const expiry = setInterval(() => chatroom.expireSessions(), 50);
  const httpUrl = `http://127.0.0.1:${server.addr.port}`;
  const url = `ws://127.0.0.1:${server.addr.port}/ws`;
  const clients: { close(): Promise<void> }[] = [];
  return {
    url,
    httpUrl,
    port: server.addr.port,
    chatroom,
    metrics,
    async join(query = "") {
      const client = await TestClient.connect(url + query);
      clients.push(client);
      const welcome = await client.next();
      const name = /^Welcome, (\S+) /.exec(welcome.body)?.[1];
      if (name === undefined) throw new Error(`Expected a welcome, got ${welcome.body}`);
      return { client, name };
    },
    async joinV2(name) {
      const client = await TestClient.connect<V2Frame>(url, "chat.v2");
      clients.push(client);
      client.send(JSON.stringify({ type: "hello", name }));
      const welcome = await client.next();
      if (welcome.type !== "welcome") throw new Error(`Expected a welcome, got ${welcome.type}`);
      return { client, welcome };
    },
    async close() {
      clearInterval(expiry);
      await Promise.all(clients.map((client) => client.close()));
      await server.shutdown();
    },
  };
}

/** Runs `body` against a fresh in-process server and always closes it. */
export async function withServer(
  options: TestServerOptions,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = startTestServer(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** A WebSocket handshake made by hand, for clients no browser would be. */
export interface RawUpgrade {
  /** The HTTP status of the answer: 101 when the socket is open. */
  readonly status: number;
  /** The connection (TCP, or TLS with `caCerts`); the caller closes it. */
  readonly conn: Deno.Conn;
  /** What was read past the answer's head: the start of the first frames. */
  readonly after: Uint8Array;
}

/**
 * Sends an upgrade request over a plain TCP connection and reads the status
 * line. After a 101 the caller may write nothing and read nothing, like a
 * stalled client, or close the TCP connection without a close frame.
 * `headers` may replace the `Host` header; with `caCerts` it speaks TLS to
 * `localhost` (wss).
 */
export async function rawUpgrade(
  port: number,
  options: { path?: string; headers?: Record<string, string>; caCerts?: string[] } = {},
): Promise<RawUpgrade> {
  const { path = "/ws", headers = {}, caCerts } = options;
  const conn = caCerts === undefined
    ? await Deno.connect({ hostname: "127.0.0.1", port })
    : await Deno.connectTls({ hostname: "localhost", port, caCerts });
  const lines = [
    `GET ${path} HTTP/1.1`,
    ...Object.entries({ Host: `127.0.0.1:${port}`, ...headers })
      .map(([name, value]) => `${name}: ${value}`),
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ];
  await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
  const buffer = new Uint8Array(4096);
  const read = await within(conn.read(buffer), "the upgrade answer");
  const received = buffer.subarray(0, read ?? 0);
  const headEnd = received.findIndex((_, i) =>
    received[i] === 13 && received[i + 1] === 10 && received[i + 2] === 13 && received[i + 3] === 10
  );
  const head = new TextDecoder().decode(headEnd < 0 ? received : received.subarray(0, headEnd));
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  if (Number.isNaN(status)) {
    conn.close();
    throw new Error(`Not an HTTP answer: ${JSON.stringify(head)}`);
  }
  return { status, conn, after: headEnd < 0 ? new Uint8Array(0) : received.slice(headEnd + 4) };
}

/** A masked client text frame (payloads under 126 bytes). */
function clientFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  if (payload.length > 125) throw new Error("clientFrame takes short texts only");
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const frame = new Uint8Array(6 + payload.length);
  frame.set([0x81, 0x80 | payload.length, ...mask]);
  payload.forEach((byte, i) => frame[6 + i] = byte ^ mask[i % 4]);
  return frame;
}

/** The close frame a raw client read: its code and reason. */
export interface RawClose {
  readonly code: number;
  readonly reason: string;
}

/**
 * A client that sends `text` every `gapMs` over a raw socket and never stops
 * to read the server's close: it returns the close frame the server managed
 * to deliver, or `undefined` when the connection ended without one.
 */
export async function floodUntilClosed(
  port: number,
  text: string,
  gapMs: number,
): Promise<RawClose | undefined> {
  const { status, conn, after } = await rawUpgrade(port);
  if (status !== 101) throw new Error(`Upgrade answered ${status}`);
  let sending = true;
  const sender = (async () => {
    while (sending) {
      try {
        await conn.write(clientFrame(text));
      } catch {
        return;
      }
      await delay(gapMs);
    }
  })();
  try {
    return await within(readCloseFrame(conn, after), "the end of the connection", 20_000);
  } finally {
    sending = false;
    await sender;
    conn.close();
  }
}

/** Reads server frames (unmasked) until a close frame or the end of the connection. */
async function readCloseFrame(
  conn: Deno.Conn,
  start: Uint8Array,
): Promise<RawClose | undefined> {
  let buffered = start;
  const chunk = new Uint8Array(65_536);
  while (true) {
    let at = 0;
    while (at + 2 <= buffered.length) {
      let length = buffered[at + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (at + 4 > buffered.length) break;
        length = (buffered[at + 2] << 8) | buffered[at + 3];
        header = 4;
      } else if (length === 127) {
        throw new Error("The server sent a frame over 64 KiB");
      }
      if (at + header + length > buffered.length) break;
      if ((buffered[at] & 0x0f) === 0x8) {
        const body = buffered.subarray(at + header, at + header + length);
        return {
          code: (body[0] << 8) | body[1],
          reason: new TextDecoder().decode(body.subarray(2)),
        };
      }
      at += header + length;
    }
    let read: number | null;
    try {
      read = await conn.read(chunk);
    } catch {
      return undefined;
    }
    if (read === null) return undefined;
    const merged = new Uint8Array(buffered.length - at + read);
    merged.set(buffered.subarray(at));
    merged.set(chunk.subarray(0, read), buffered.length - at);
    buffered = merged;
  }
}
