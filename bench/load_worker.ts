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
  /** Wait for each client's first frame, the server's greeting, before reporting ready. */
  greeted: boolean;
  /**
   * v2: clients with an id below this also say they are typing with each
   * round's messages (the server passes one on every 2 s and drops the rest).
   */
  typists: number;
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

/** What this worker's clients received of one round. */
class Tally {
  readonly received: number[];
  /** One slot per delivery this worker's clients receive in a round. */
  readonly latencies: Float64Array;
  events = 0;
  frames = 0;
  finished = 0;

  constructor(clients: number) {
    this.received = new Array(clients).fill(0);
    this.latencies = new Float64Array(clients * setup.expected);
  }

  /** Counts one delivery to client `index`; true when it completes the round for this worker. */
  count(index: number, latency: number): boolean {
    this.latencies[this.events++] = latency;
    return ++this.received[index] === setup.expected &&
      ++this.finished === this.received.length;
  }
}

let current: Tally;
/**
 * The next round's messages: the workers hear of a round one after another,
 * so another worker's clients may send before this one has started it.
 */
let next: Tally;

/** Reads the decimal number (digits and at most one point) at `cursor`. */
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

function report(tally: Tally): void {
  const done: FromWorker = {
    type: "done",
    round,
    latencies: tally.latencies.slice(0, tally.events),
    frames: tally.frames,
    events: tally.events,
  };
  self.postMessage(done);
}

/**
 * Counts the bench messages in one frame without parsing its JSON or decoding
 * its UTF-8: each is "b|<round>|<client>|<n>|<sent at>" inside a string,
 * wherever the protocol puts it, and a batched v2 frame holds many. Scanning
 * bytes keeps the client far cheaper than the servers it measures.
 */
function onFrame(index: number, data: Uint8Array): void {
  current.frames++;
  const at = now();
  // A bar is rare outside the bench messages: look for bars, not for "b".
  for (let bar = data.indexOf(PIPE); bar >= 0; bar = data.indexOf(PIPE, bar + 1)) {
    if (data[bar - 1] !== B) continue;
    let cursor = bar + 1;
    const messageRound = readNumber(data, cursor);
    const tally = messageRound === round ? current : messageRound === round + 1 ? next : undefined;
    if (tally === undefined) continue;
    // Skip <round>, <client> and <n>; what follows the next bar is the send time.
    for (let bars = 0; bars < 3; cursor++) if (data[cursor] === PIPE) bars++;
    if (tally.count(index, at - readNumber(data, cursor)) && tally === current) report(current);
    bar = cursor;
  }
}

/**
 * Connects client `index`; with the chat, resolves once the server has
 * seated it in the room (its first frame is the welcome). A round started
 * before would be said, in part, to a room the client is not in yet, and
 * never end: with NATS, a session waits for the cluster to grant its name.
 */
function connect(index: number): Promise<WsClient> {
  const v2 = setup.protocol !== "text";
  const welcomed = Promise.withResolvers<void>();
  const onData = (data: Uint8Array) => {
    welcomed.resolve();
    onFrame(index, data);
  };
  return WsClient.open(setup.url, v2 ? "chat.v2" : undefined, onData)
    .then(async (socket) => {
      if (v2) await socket.send(JSON.stringify({ type: "hello" }));
      if (setup.greeted) await welcomed.promise;
      return socket;
    });
}

function sendRound(socket: WsClient, id: number): void {
  const texts = Array.from(
    { length: setup.messages },
    (_, n) => `b|${round}|${id}|${n}|${now()}`,
  );
  const says = texts.map((text) => ({ type: "say", text }));
  const requests = id < setup.typists ? [{ type: "typing" }, ...says] : says;
  if (setup.protocol === "text") socket.send(...texts);
  else if (setup.protocol === "v2") {
    socket.send(...requests.map((request) => JSON.stringify(request)));
  } else socket.send(JSON.stringify(requests));
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "setup") {
    setup = message.setup;
    current = new Tally(setup.ids.length);
    next = new Tally(setup.ids.length);
    sockets = await Promise.all(setup.ids.map((_, index) => connect(index)));
    self.postMessage({ type: "ready" } satisfies FromWorker);
  } else {
    round = message.round;
    current = next;
    next = new Tally(setup.ids.length);
    sockets.forEach((socket, index) => sendRound(socket, setup.ids[index]));
  }
};
