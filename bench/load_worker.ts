/**
 * One thread of the load client: some of the clients, their sends and their
 * counting. The main thread (bench/load.ts) runs the rounds.
 */

/// <reference lib="deno.worker" />

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
const PIPE = 124;
const ZERO = 48;

let setup: WorkerSetup;
let sockets: WebSocket[] = [];
let round = -1;
let received: number[] = [];
/** One slot per delivery this worker's clients receive in a round. */
let latencies = new Float64Array(0);
let frames = 0;
let events = 0;
let finished = 0;

/**
 * Counts the bench messages in one frame without parsing its JSON: each is
 * "b|<round>|<client>|<n>|<sent at>" inside a string, wherever the protocol
 * puts it, and a batched v2 frame holds many. Scanning by hand keeps the
 * client far cheaper than the servers it measures.
 */
function onFrame(index: number, data: string): void {
  frames++;
  const at = now();
  for (let start = data.indexOf("b|"); start >= 0; start = data.indexOf("b|", start + 2)) {
    let cursor = start + 2;
    let messageRound = 0;
    for (let code = data.charCodeAt(cursor++); code !== PIPE; code = data.charCodeAt(cursor++)) {
      messageRound = messageRound * 10 + code - ZERO;
    }
    if (messageRound !== round) continue;
    // Skip <client> and <n>; what follows the next bar is the send time.
    cursor = data.indexOf("|", data.indexOf("|", cursor) + 1) + 1;
    latencies[events++] = at - parseFloat(data.slice(cursor, data.indexOf('"', cursor)));
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

async function connect(index: number): Promise<WebSocket> {
  const v2 = setup.protocol !== "text";
  const socket = v2 ? new WebSocket(setup.url, "chat.v2") : new WebSocket(setup.url);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", reject, { once: true });
  });
  if (v2) socket.send(JSON.stringify({ type: "hello" }));
  socket.addEventListener("message", (event) => onFrame(index, event.data));
  return socket;
}

function sendRound(socket: WebSocket, id: number): void {
  const texts = Array.from(
    { length: setup.messages },
    (_, n) => `b|${round}|${id}|${n}|${now()}`,
  );
  if (setup.protocol === "text") {
    for (const text of texts) socket.send(text);
  } else if (setup.protocol === "v2") {
    for (const text of texts) socket.send(JSON.stringify({ type: "say", text }));
  } else {
    socket.send(JSON.stringify(texts.map((text) => ({ type: "say", text }))));
  }
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
