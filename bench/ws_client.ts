/**
 * The load client's WebSocket: a minimal client over a TCP connection, so the
 * bench controls what a browser-grade client does not let it. It turns
 * Nagle's algorithm off (Deno's built-in client turns it on, which stalls a
 * request-reply round 40 ms on delayed acknowledgements), writes several
 * frames in one system call, and hands frames over as bytes, so counting the
 * messages in them needs no UTF-8 decoding.
 *
 * It speaks just what the bench needs (RFC 6455 without extensions): masked
 * text frames out; unfragmented text or binary frames, pings and close in.
 */

const encoder = new TextEncoder();
const HEADER_END = encoder.encode("\r\n\r\n");
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The least free space each read offers, so that reads stay large. */
const MIN_READ = 1 << 16;

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Called with the payload of each data frame; valid only until it returns. */
export type FrameHandler = (payload: Uint8Array) => void;

function indexOfSequence(haystack: Uint8Array, needle: Uint8Array): number {
  for (let i = haystack.indexOf(needle[0]); i >= 0 && i + needle.length <= haystack.length;) {
    if (needle.every((byte, k) => haystack[i + k] === byte)) return i;
    i = haystack.indexOf(needle[0], i + 1);
  }
  return -1;
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return base64(new Uint8Array(digest));
}

/** The size of a client frame carrying `length` bytes. */
function frameSize(length: number): number {
  return 2 + (length < 126 ? 0 : length < 0x10000 ? 2 : 8) + 4 + length;
}

/** Writes one client frame (header, mask key, masked payload) at `at`; returns where it ends. */
function writeFrame(
  out: Uint8Array,
  at: number,
  opcode: number,
  payload: Uint8Array,
  mask: Uint8Array,
): number {
  const length = payload.length;
  out[at++] = 0x80 | opcode;
  if (length < 126) out[at++] = 0x80 | length;
  else if (length < 0x10000) {
    out[at++] = 0x80 | 126;
    out[at++] = length >> 8;
    out[at++] = length & 0xff;
  } else {
    out[at++] = 0x80 | 127;
    new DataView(out.buffer, out.byteOffset).setBigUint64(at, BigInt(length));
    at += 8;
  }
  out.set(mask, at);
  at += 4;
  for (let i = 0; i < length; i++) out[at + i] = payload[i] ^ mask[i & 3];
  return at + length;
}

/** Client frames for `payloads`, back to back in one buffer, each with a fresh mask key. */
function framesBytes(opcode: number, payloads: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(
    payloads.reduce((size, payload) => size + frameSize(payload.length), 0),
  );
  const masks = crypto.getRandomValues(new Uint8Array(4 * payloads.length));
  let at = 0;
  payloads.forEach((payload, i) => {
    at = writeFrame(out, at, opcode, payload, masks.subarray(4 * i, 4 * i + 4));
  });
  return out;
}

/** One client connection; opened with {@linkcode WsClient.open}. */
export class WsClient {
  readonly #conn: Deno.TcpConn;
  readonly #onFrame: FrameHandler;
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;
  #writing: Promise<void> = Promise.resolve();

  private constructor(conn: Deno.TcpConn, onFrame: FrameHandler, rest: Uint8Array) {
    this.#conn = conn;
    this.#onFrame = onFrame;
    this.#buffer = new Uint8Array(Math.max(1 << 18, rest.length));
    this.#buffer.set(rest);
    this.#end = rest.length;
    // Not awaited: a protocol error rejects unhandled and fails the load worker loudly.
    this.#readLoop();
  }

  /** Connects to a `ws://` URL on loopback and completes the handshake. */
  static async open(
    url: string,
    protocol: string | undefined,
    onFrame: FrameHandler,
  ): Promise<WsClient> {
    const { hostname, port, pathname, search } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.setNoDelay(true);
    const key = base64(crypto.getRandomValues(new Uint8Array(16)));
    const lines = [
      `GET ${pathname}${search} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(protocol === undefined ? [] : [`Sec-WebSocket-Protocol: ${protocol}`]),
    ];
    await writeAll(conn, encoder.encode(`${lines.join("\r\n")}\r\n\r\n`));

    let response: Uint8Array = new Uint8Array(0);
    let headerEnd = -1;
    while (headerEnd < 0) {
      const chunk = new Uint8Array(4096);
      const read = await conn.read(chunk);
      if (read === null) throw new Error(`${url}: the server closed during the handshake`);
      response = concat(response, chunk.subarray(0, read));
      headerEnd = indexOfSequence(response, HEADER_END);
    }
    const head = new TextDecoder().decode(response.subarray(0, headerEnd));
    const accept = /^sec-websocket-accept:\s*(\S+)/im.exec(head)?.[1];
    if (!head.startsWith("HTTP/1.1 101") || accept !== await acceptKey(key)) {
      conn.close();
      throw new Error(`${url}: the upgrade was refused: ${head.split("\r\n")[0]}`);
    }
    return new WsClient(conn, onFrame, response.subarray(headerEnd + HEADER_END.length));
  }

  /** Sends texts as text frames, all in one write. */
  send(...texts: string[]): Promise<void> {
    return this.#write(framesBytes(OP_TEXT, texts.map((text) => encoder.encode(text))));
  }

  /** Closes the TCP connection (the bench does not wait for a close handshake). */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
  }

  #write(bytes: Uint8Array): Promise<void> {
    this.#writing = this.#writing.then(() => writeAll(this.#conn, bytes));
    return this.#writing;
  }

  async #readLoop(): Promise<void> {
    try {
      // Frames may have come in with the handshake's response.
      if (!this.#parseFrames()) return this.close();
      while (true) {
        if (this.#buffer.length - this.#end < MIN_READ) this.#makeRoom();
        const read = await this.#conn.read(this.#buffer.subarray(this.#end));
        if (read === null) return;
        this.#end += read;
        if (!this.#parseFrames()) return this.close();
      }
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return; // closed by close()
      }
      throw error;
    }
  }

  /** Hands over every complete frame; false once the server has closed. */
  #parseFrames(): boolean {
    const buffer = this.#buffer;
    while (this.#end - this.#start >= 2) {
      const at = this.#start;
      const first = buffer[at];
      const second = buffer[at + 1];
      if (second & 0x80) throw new Error("The server masked a frame");
      let length = second & 0x7f;
      let header = 2;
      if (length === 126) {
        header = 4;
        if (this.#end - at < header) break;
        length = (buffer[at + 2] << 8) | buffer[at + 3];
      } else if (length === 127) {
        header = 10;
        if (this.#end - at < header) break;
        length = Number(new DataView(buffer.buffer, at + 2, 8).getBigUint64(0));
      }
      if (this.#end - at < header + length) {
        if (header + length > buffer.length) this.#grow(header + length);
        break;
      }
      const payload = buffer.subarray(at + header, at + header + length);
      this.#start = at + header + length;
      const opcode = first & 0x0f;
      if (opcode === OP_TEXT || opcode === OP_BINARY) {
        if (!(first & 0x80)) throw new Error("The bench client does not take fragmented frames");
        this.#onFrame(payload);
      } else if (opcode === OP_PING) {
        this.#write(framesBytes(OP_PONG, [payload.slice()]));
      } else if (opcode === OP_CLOSE) {
        return false;
      }
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return true;
  }

  /** Moves the unparsed bytes to the front, and grows the buffer if that leaves too little room. */
  #makeRoom(): void {
    this.#buffer.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
    if (this.#buffer.length - this.#end < MIN_READ) this.#grow(this.#buffer.length * 2);
  }

  #grow(size: number): void {
    const bigger = new Uint8Array(Math.max(size, this.#buffer.length * 2));
    bigger.set(this.#buffer.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buffer = bigger;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}
