/**
 * One thread of the load client: some of the clients, their sends and their
 * counting. The main thread (bench/load.ts) runs the rounds.
 */

/// <reference lib="deno.worker" />

import { WsClient } from "./ws_client.ts";

export interface WorkerSetup {
  url: string;
  /** `v2-batched` sends each client's messages of a round as one frame (a JSON array). */
  protocol: "text" | "v2" | "v2-batched";
  /** Ids of the clients this worker runs. */
  ids: number[];
  /** Messages every client receives per round: clients × messages. */
  expected: number;
  messages: number;
}

export type ToWorker = { type: "setup"; setup: WorkerSetup } | { type: "round"; round: number };

export type FromWorker =
  | { type: "ready" }
  | { type: "done"; round: number; latencies: Float64Array; frames: number; events: number };

const now = (): number => performance.timeOrigin + performance.now();
const B = 98; // "b"
const PIPE = 124; // "|"
const ZERO = 48; // "0"
const DOT = 46; // "."

let setup: WorkerSetup;
let sockets: WsClient[] = [];
let round = -1;
let received: number[] = [];
/** One slot per delivery this worker's clients receive in a round. */
let latencies = new Float64Array(0);
let frames = 0;
let events = 0;
let finished = 0;

/** Reads the decimal number (digits and at most one point) at `cursor` up to `end`. */
function readNumber(data: Uint8Array, cursor: number): number {
  let value = 0;
  let scale = 0;
  for (let code = data[cursor]; cursor < data.length; code = data[++cursor]) {
    if (code === DOT) scale = 1;
    else if (code >= ZERO && code <= ZERO + 9) {
      value = value * 10 + code - ZERO;
      if (scale) scale *= 10;
    } else break;
  }
  return scale ? value / scale : value;
}

/**
 * Counts the bench messages in one frame without parsing its JSON or decoding
 * its UTF-8: each is "b|<round>|<client>|<n>|<sent at>" inside a string,
 * wherever the protocol puts it, and a batched v2 frame holds many. Scanning
 * bytes keeps the client far cheaper than the servers it measures.
 */
function onFrame(index: number, data: Uint8Array): void {
  frames++;
  const at = now();
  for (let start = data.indexOf(B); start >= 0; start = data.indexOf(B, start + 1)) {
    if (data[start + 1] !== PIPE) continue;
    let cursor = start + 2;
    if (readNumber(data, cursor) !== round) continue;
    // Skip <round>, <client> and <n>; what follows the next bar is the send time.
    for (let bars = 0; bars < 3; cursor++) if (data[cursor] === PIPE) bars++;
    latencies[events++] = at - readNumber(data, cursor);
    if (++received[index] === setup.expected && ++finished === sockets.length) {
      const done: FromWorker = {
        type: "done",
        round,
        latencies: latencies.slice(0, events),
        frames,
        events,
      };
      self.postMessage(done);
    }
  }
}

function connect(index: number): Promise<WsClient> {
  const v2 = setup.protocol !== "text";
  return WsClient.open(setup.url, v2 ? "chat.v2" : undefined, (data) => onFrame(index, data))
    .then(async (socket) => {
      if (v2) await socket.send(JSON.stringify({ type: "hello" }));
      return socket;
    });
}

function sendRound(socket: WsClient, id: number): void {
  const texts = Array.from(
    { length: setup.messages },
    (_, n) => `b|${round}|${id}|${n}|${now()}`,
  );
  if (setup.protocol === "text") socket.send(...texts);
  else if (setup.protocol === "v2") {
    socket.send(...texts.map((text) => JSON.stringify({ type: "say", text })));
  } else socket.send(JSON.stringify(texts.map((text) => ({ type: "say", text }))));
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "setup") {
    setup = message.setup;
    sockets = await Promise.all(setup.ids.map((_, index) => connect(index)));
    self.postMessage({ type: "ready" } satisfies FromWorker);
  } else {
    round = message.round;
    received = sockets.map(() => 0);
    latencies = new Float64Array(sockets.length * setup.expected);
    frames = 0;
    events = 0;
    finished = 0;
    sockets.forEach((socket, index) => sendRound(socket, setup.ids[index]));
  }
};
