/**
 * The load client: N clients, each sending K messages a round; a round ends
 * when every client has received every message. Clients are spread over
 * worker threads so that the client is not the bottleneck.
 */

import type { FromWorker, ToWorker, WorkerSetup } from "./load_worker.ts";

export interface LoadOptions {
  /** Where the clients connect, with `?room=` to start them in a room of their own. */
  url: string;
  protocol: "text" | "v2" | "v2-batched";
  clients: number;
  messages: number;
  workers: number;
  /**
   * The server greets each client first (the chat's welcome, sent once it
   * has seated the client in its room): wait for that before the first round.
   */
  greeted: boolean;
  /** v2: the share of clients that also send `typing` with each round's messages (0 by default). */
  typing?: number;
}

/** What the load on one server measured, over its rounds (the first, a warm-up, excluded). */
export interface LoadResult {
  /** Events delivered per second, each event of a batched frame counted. */
  deliveriesPerSecond: number;
  /** Median round time, milliseconds. */
  roundMs: number;
  /** Per-delivery latency percentiles, milliseconds. */
  p50Ms: number;
  p99Ms: number;
  /** Frames received per delivered event (below 1 when frames are batched). */
  framesPerEvent: number;
  /** CPU time the load client used, as a share of the wall time of the rounds (1 = one core). */
  clientCpu: number;
}

/** CPU seconds this process (all its threads) has used, from /proc. */
export function processCpuSeconds(pid: number | "self" = "self"): number {
  // Each thread's schedstat starts with its time on a CPU in nanoseconds, far finer than
  // the clock ticks (10 ms) of /proc/<pid>/stat.
  let nanoseconds = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      nanoseconds += Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0],
      );
    } catch {
      // The thread ended meanwhile.
    }
  }
  return nanoseconds / 1e9;
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** How long a worker may take to report, before the measurement fails instead of hanging. */
const WORKER_TIMEOUT_MS = 60_000;

function waitFor<T extends FromWorker["type"]>(
  worker: Worker,
  type: T,
): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanUp();
      reject(new Error(`A load worker sent no "${type}" within ${WORKER_TIMEOUT_MS / 1000} s`));
    }, WORKER_TIMEOUT_MS);
    const onMessage = (event: MessageEvent<FromWorker>) => {
      if (event.data.type !== type) return;
      cleanUp();
      resolve(event.data as Extract<FromWorker, { type: T }>);
    };
    const onError = (event: ErrorEvent) => {
      event.preventDefault();
      cleanUp();
      reject(new Error(`A load worker failed: ${event.message}`));
    };
    const cleanUp = () => {
      clearTimeout(timer);
      worker.removeEventListener("message", onMessage);
      worker.removeEventListener("error", onError);
    };
    worker.addEventListener("message", onMessage);
    worker.addEventListener("error", onError);
  });
}

/**
 * The load on one server: its clients stay connected between rounds, so the
 * bench can run a round on each server in turn and compare servers measured
 * moments apart rather than minutes apart on a machine whose speed drifts.
 */
export class Load {
  readonly #options: LoadOptions;
  readonly #workers: Worker[];
  #round = 0;
  readonly #roundTimes: number[] = [];
  readonly #latencies: Float64Array[] = [];
  #frames = 0;
  #events = 0;
  #cpu = 0;
  #wall = 0;

  private constructor(options: LoadOptions, workers: Worker[]) {
    this.#options = options;
    this.#workers = workers;
  }

  /** Starts the worker threads and connects every client. */
  static async open(options: LoadOptions): Promise<Load> {
    const { clients, messages, workers: threads } = options;
    const workers = Array.from(
      { length: threads },
      () => new Worker(new URL("./load_worker.ts", import.meta.url), { type: "module" }),
    );
    const load = new Load(options, workers);
    try {
      await Promise.all(workers.map((worker, w) => {
        const ids = Array.from({ length: clients }, (_, id) => id)
          .filter((id) => id % threads === w);
        const setup: WorkerSetup = {
          url: options.url,
          protocol: options.protocol,
          ids,
          expected: clients * messages,
          messages,
          greeted: options.greeted,
          typists: Math.round(clients * (options.typing ?? 0)),
        };
        const ready = waitFor(worker, "ready");
        worker.postMessage({ type: "setup", setup } satisfies ToWorker);
        return ready;
      }));
    } catch (error) {
      load.close();
      throw error;
    }
    return load;
  }

  /** Runs one round; the first is a warm-up and is not counted. */
  async round(): Promise<void> {
    const round = this.#round++;
    const cpuBefore = processCpuSeconds();
    const started = performance.now();
    const done = Promise.all(this.#workers.map((worker) => waitFor(worker, "done")));
    for (const worker of this.#workers) {
      worker.postMessage({ type: "round", round } satisfies ToWorker);
    }
    const results = await done;
    const elapsed = performance.now() - started;
    if (round === 0) return;
    this.#roundTimes.push(elapsed);
    this.#wall += elapsed / 1000;
    this.#cpu += processCpuSeconds() - cpuBefore;
    for (const result of results) {
      this.#latencies.push(result.latencies);
      this.#frames += result.frames;
      this.#events += result.events;
    }
  }

  /** What the counted rounds measured. */
  result(): LoadResult {
    const { clients, messages } = this.#options;
    const latencies = new Float64Array(this.#latencies.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of this.#latencies) {
      latencies.set(part, offset);
      offset += part.length;
    }
    latencies.sort();
    const roundMs = median(this.#roundTimes);
    return {
      deliveriesPerSecond: clients * clients * messages / (roundMs / 1000),
      roundMs,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      framesPerEvent: this.#frames / this.#events,
      clientCpu: this.#cpu / this.#wall,
    };
  }

  /** Ends the workers, which closes their sockets. */
  close(): void {
    for (const worker of this.#workers) worker.terminate();
  }
}
