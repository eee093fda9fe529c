/**
 * `deno task bench --cluster`: what joining instances through NATS costs and
 * gives, on this machine, in one run: one instance alone against the same
 * instance on NATS, with one, three and four rooms, each pair measured round
 * by round in turn; three instances on NATS each serving their own room; and
 * an instance whose users are all in a quiet room while another serves a
 * busy one (interest-based routing: the quiet one should hardly work).
 */

import { delay } from "@std/async/delay";
import { TextLineStream } from "@std/streams";
import { fromFileUrl, join } from "@std/path";
import { Load, type LoadOptions, median, processCpuSeconds } from "./load.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const BENCH_ENV = join(ROOT, "bench", "config", "bench");

/** The settings of the load, as in the main bench. */
export interface ClusterBenchOptions {
  runs: number;
  clients: number;
  messages: number;
  rounds: number;
  workers: number;
}

/** One setup's figures: deliveries per second and CPU seconds per room message. */
export interface ClusterRow {
  readonly name: string;
  readonly protocol: LoadOptions["protocol"];
  readonly deliveriesPerSecond: number;
  /** CPU of the chat instances, in microseconds per room message. */
  readonly instanceCpuPerMessageUs: number;
  /** CPU of nats-server, in microseconds per room message (0 alone). */
  readonly natsCpuPerMessageUs: number;
}

/** A setup on NATS against the same load alone, measured round by round in turn. */
export interface ClusterRatio {
  readonly setup: string;
  readonly base: string;
  readonly protocol: LoadOptions["protocol"];
  /** Deliveries per second on NATS over alone: the median of the runs, the lowest and highest. */
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
}

/** What `--cluster` measured. */
export interface ClusterReport {
  readonly rows: ClusterRow[];
  readonly ratios: ClusterRatio[];
  /** CPU of the instance serving only a quiet room over that of the one serving the busy room. */
  readonly quietOverBusyCpu: number;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A nats-server with JetStream, in a scratch folder; instances use its client port. */
async function startNats(
  dir: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = freePort();
  const config = join(dir, "nats.conf");
  await Deno.writeTextFile(
    config,
    `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${join(dir, "jetstream")}" }\n`,
  );
  const child = new Deno.Command("nats-server", {
    args: ["-c", config],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: ReadableStream<string> = child.stderr.pipeThrough(new TextDecoderStream())
    .pipeThrough(new TextLineStream());
  const reader = lines.getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error("nats-server exited before it was ready");
    if (value.includes("Server is ready")) break;
  }
  (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** A bench environment folder, joined to NATS at `natsUrl` when given. */
async function environment(dir: string, natsUrl?: string): Promise<string> {
  const configDir = await Deno.makeTempDir({ dir });
  await Deno.mkdir(join(configDir, "bench"));
  await Deno.copyFile(join(BENCH_ENV, "chat.yaml"), join(configDir, "bench", "chat.yaml"));
  const server = await Deno.readTextFile(join(BENCH_ENV, "server.yaml"));
  await Deno.writeTextFile(
    join(configDir, "bench", "server.yaml"),
    natsUrl === undefined ? server : `${server}cluster:\n  nats:\n    servers: ["${natsUrl}"]\n`,
  );
  return configDir;
}

/** A chat instance; resolves once it answers. */
async function startInstance(
  configDir: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "--unstable-kv", "src/main.ts"],
    cwd: ROOT,
    env: { CHAT_CONFIG_DIR: configDir, CHAT_ENV: "bench", CHAT_PORT: String(port) },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (let tries = 0;; tries++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      await response.body?.cancel();
      break;
    } catch {
      if (tries > 400) throw new Error("an instance did not start");
      await delay(50);
    }
  }
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Rounds each setup runs before it is measured: the code a setup runs is warm then. */
export const WARM_UP_ROUNDS = 10;
/** Rounds measured per setup and run, at least (a round lasts a few milliseconds with v2). */
export const MIN_ROUNDS = 40;

/** Clients loading one setup, and the processes whose CPU it costs. */
interface Setup {
  readonly loads: { load: Load; clients: number }[];
  readonly pids: { instances: number[]; nats?: number };
}

/** What one setup measured in one run. */
interface Measured {
  /** Deliveries per second, from the median round. */
  readonly rate: number;
  /** CPU seconds of the instances and of nats-server over the measured rounds. */
  readonly instanceCpu: number;
  readonly natsCpu: number;
  readonly roomMessages: number;
}

/**
 * Measures two setups round by round in turn (after a warm-up of each), so
 * that they are compared moments apart on a machine whose speed drifts.
 */
async function measurePair(
  pair: readonly [Setup, Setup],
  options: ClusterBenchOptions,
): Promise<[Measured, Measured]> {
  const round = (setup: Setup) => Promise.all(setup.loads.map(({ load }) => load.round()));
  for (let warm = 0; warm < WARM_UP_ROUNDS; warm++) {
    for (const setup of pair) await round(setup);
  }
  const rounds = Math.max(options.rounds, MIN_ROUNDS);
  const cpu = (pid: number) => processCpuSeconds(pid);
  const state = pair.map((setup) => ({
    times: [] as number[],
    instanceCpu: 0,
    natsCpu: 0,
    setup,
  }));
  for (let i = 0; i < rounds; i++) {
    for (const entry of state) {
      const { pids } = entry.setup;
      const instancesBefore = pids.instances.map(cpu);
      const natsBefore = pids.nats === undefined ? 0 : cpu(pids.nats);
      const started = performance.now();
      await round(entry.setup);
      entry.times.push(performance.now() - started);
      entry.instanceCpu += pids.instances.reduce(
        (sum, pid, index) => sum + cpu(pid) - instancesBefore[index],
        0,
      );
      if (pids.nats !== undefined) entry.natsCpu += cpu(pids.nats) - natsBefore;
    }
  }
  const result = ({ setup, times, instanceCpu, natsCpu }: (typeof state)[number]): Measured => {
    const clients = setup.loads.map((load) => load.clients);
    const deliveries = clients.reduce((sum, n) => sum + n * n, 0) * options.messages;
    return {
      rate: deliveries / (median(times) / 1000),
      instanceCpu,
      natsCpu,
      roomMessages: clients.reduce((sum, n) => sum + n, 0) * options.messages * rounds,
    };
  };
  return [result(state[0]), result(state[1])];
}

/** The setups measured, as the report names them. */
export const ALONE_ONE = "one instance alone, one room";
export const NATS_ONE = "one instance on NATS, one room";
export const ALONE_THREE = "one instance alone, three rooms";
export const NATS_THREE = "one instance on NATS, three rooms";
export const NATS_THREE_INSTANCES = "three instances on NATS, a room each";
export const ALONE_FOUR = "one instance alone, four rooms";
export const NATS_FOUR = "one instance on NATS, four rooms";

/** Each setup on NATS, and the setup alone it is compared with, round by round. */
export const PAIRS: readonly (readonly [string, string])[] = [
  [ALONE_ONE, NATS_ONE],
  [ALONE_THREE, NATS_THREE],
  [ALONE_FOUR, NATS_FOUR],
  [ALONE_THREE, NATS_THREE_INSTANCES],
];

/** Splits `total` clients over `parts` groups as evenly as possible. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor((total + i) / parts));
}

/** Measures the cluster setups, `runs` times each, and takes medians. */
export async function benchCluster(options: ClusterBenchOptions): Promise<ClusterReport> {
  const scratch = await Deno.makeTempDir({ prefix: "chat-bench-cluster-" });
  const samples = new Map<
    string,
    { name: string; protocol: LoadOptions["protocol"]; values: Measured[] }
  >();
  const ratios = new Map<
    string,
    { setup: string; base: string; protocol: LoadOptions["protocol"]; values: number[] }
  >();
  const record = (name: string, protocol: LoadOptions["protocol"], value: Measured) => {
    const key = `${name}\n${protocol}`;
    const entry = samples.get(key) ?? { name, protocol, values: [] };
    entry.values.push(value);
    samples.set(key, entry);
  };
  const quietRatios: number[] = [];
  let rooms = 0;
  try {
    for (let run = 0; run < options.runs; run++) {
      const nats = await startNats(await Deno.makeTempDir({ dir: scratch }));
      const alone = await startInstance(await environment(scratch));
      const clusterEnv = await environment(scratch, nats.url);
      const joined = await Promise.all([0, 1, 2].map(() => startInstance(clusterEnv)));
      const urls: Record<string, { urls: string[]; pids: Setup["pids"] }> = {
        [ALONE_ONE]: { urls: [alone.url], pids: { instances: [alone.pid] } },
        [NATS_ONE]: { urls: [joined[0].url], pids: { instances: [joined[0].pid], nats: nats.pid } },
        [ALONE_THREE]: { urls: Array(3).fill(alone.url), pids: { instances: [alone.pid] } },
        [NATS_THREE]: {
          urls: Array(3).fill(joined[0].url),
          pids: { instances: [joined[0].pid], nats: nats.pid },
        },
        [NATS_THREE_INSTANCES]: {
          urls: joined.map((instance) => instance.url),
          pids: { instances: joined.map((instance) => instance.pid), nats: nats.pid },
        },
        [ALONE_FOUR]: { urls: Array(4).fill(alone.url), pids: { instances: [alone.pid] } },
        [NATS_FOUR]: {
          urls: Array(4).fill(joined[0].url),
          pids: { instances: [joined[0].pid], nats: nats.pid },
        },
      };
      try {
        for (const protocol of ["text", "v2-batched"] as const) {
          /** The clients of setup `name`, split between its URLs, each group in a room of its own. */
          const open = async (name: string): Promise<Setup> => {
            const { urls: targets, pids } = urls[name];
            const groups = split(options.clients, targets.length);
            // One worker thread per group, so that three groups use no more threads than one.
            const workers = targets.length === 1 ? options.workers : 1;
            const loads = await Promise.all(targets.map(async (url, i) => ({
              load: await Load.open({
                ...options,
                workers,
                // A room never used before: an old round's messages in its history would count.
                url: `${url}?room=bench${++rooms}`,
                protocol,
                greeted: true,
                clients: groups[i],
              }),
              clients: groups[i],
            })));
            return { loads, pids };
          };
          // A setup alone that is the base of two pairs gives its row one sample a run, the first.
          const recorded = new Set<string>();
          for (const [base, setup] of PAIRS) {
            const pair = [await open(base), await open(setup)] as const;
            try {
              const [alone, onNats] = await measurePair(pair, options);
              if (!recorded.has(base)) record(base, protocol, alone);
              recorded.add(base);
              record(setup, protocol, onNats);
              const key = `${setup}\n${protocol}`;
              const entry = ratios.get(key) ?? { setup, base, protocol, values: [] };
              entry.values.push(onNats.rate / alone.rate);
              ratios.set(key, entry);
            } finally {
              for (const { loads } of pair) for (const { load } of loads) load.close();
            }
          }
        }
        // Interest-based routing: the second instance's users sit in a quiet room.
        const quiet = await Load.open({
          ...options,
          url: `${joined[1].url}?room=quiet`,
          protocol: "text",
          greeted: true,
          clients: 4,
        });
        const busy = await Load.open({
          ...options,
          url: `${joined[0].url}?room=busy`,
          protocol: "text",
          greeted: true,
          clients: options.clients,
        });
        try {
          const quietBefore = processCpuSeconds(joined[1].pid);
          const busyBefore = processCpuSeconds(joined[0].pid);
          for (let round = 0; round < options.rounds; round++) await busy.round();
          quietRatios.push(
            (processCpuSeconds(joined[1].pid) - quietBefore) /
              (processCpuSeconds(joined[0].pid) - busyBefore),
          );
        } finally {
          quiet.close();
          busy.close();
        }
      } finally {
        await Promise.all([alone, ...joined].map((instance) => instance.stop()));
        await nats.stop();
      }
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  const rows: ClusterRow[] = [...samples.values()].map(({ name, protocol, values }) => ({
    name,
    protocol,
    deliveriesPerSecond: median(values.map((value) => value.rate)),
    instanceCpuPerMessageUs: median(values.map((value) => value.instanceCpu / value.roomMessages)) *
      1e6,
    natsCpuPerMessageUs: median(values.map((value) => value.natsCpu / value.roomMessages)) * 1e6,
  }));
  return {
    rows,
    ratios: [...ratios.values()].map(({ setup, base, protocol, values }) => ({
      setup,
      base,
      protocol,
      ratio: median(values),
      low: Math.min(...values),
      high: Math.max(...values),
    })),
    quietOverBusyCpu: median(quietRatios),
  };
}
