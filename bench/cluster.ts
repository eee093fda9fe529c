/**
 * `deno task bench --cluster`: what joining instances through NATS costs and
 * gives, on this machine, in one run: one instance alone, the same instance
 * on NATS (with one room, and with four), three instances on NATS each
 * serving their own room, and an
 * instance whose users are all in a quiet room while another serves a busy
 * one (interest-based routing: the quiet one should hardly work).
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

/** What `--cluster` measured. */
export interface ClusterReport {
  readonly rows: ClusterRow[];
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

/**
 * Runs `rounds` rounds on every load at once and returns deliveries per
 * second (from the median round), with the CPU the processes used meanwhile.
 */
async function measure(
  loads: { load: Load; clients: number }[],
  options: ClusterBenchOptions,
  pids: { instances: number[]; nats?: number },
): Promise<{ rate: number; instanceCpu: number; natsCpu: number; roomMessages: number }> {
  await Promise.all(loads.map(({ load }) => load.round()));
  const cpu = (pid: number) => processCpuSeconds(pid);
  const instanceBefore = pids.instances.map(cpu);
  const natsBefore = pids.nats === undefined ? 0 : cpu(pids.nats);
  const times: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const started = performance.now();
    await Promise.all(loads.map(({ load }) => load.round()));
    times.push(performance.now() - started);
  }
  const deliveries = loads.reduce((sum, { clients }) => sum + clients * clients, 0) *
    options.messages;
  const roomMessages = loads.reduce((sum, { clients }) => sum + clients, 0) * options.messages *
    options.rounds;
  return {
    rate: deliveries / (median(times) / 1000),
    instanceCpu: pids.instances.reduce((sum, pid, i) => sum + cpu(pid) - instanceBefore[i], 0),
    natsCpu: pids.nats === undefined ? 0 : cpu(pids.nats) - natsBefore,
    roomMessages,
  };
}

/** The setups measured, as the report names them. */
export const ALONE_ONE = "one instance alone, one room";
export const NATS_ONE = "one instance on NATS, one room";
export const ALONE_THREE = "one instance alone, three rooms";
export const NATS_THREE = "three instances on NATS, a room each";
export const ALONE_FOUR = "one instance alone, four rooms";
export const NATS_FOUR = "one instance on NATS, four rooms";

/** Splits `total` clients over `parts` groups as evenly as possible. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor((total + i) / parts));
}

/** Measures the cluster setups, `runs` times each, and takes medians. */
export async function benchCluster(options: ClusterBenchOptions): Promise<ClusterReport> {
  const scratch = await Deno.makeTempDir({ prefix: "chat-bench-cluster-" });
  const samples = new Map<
    string,
    { name: string; protocol: LoadOptions["protocol"]; values: ReturnType<typeof row>[] }
  >();
  const row = (rate: number, cpu: number, nats: number, messages: number) => ({
    rate,
    instanceUs: cpu / messages * 1e6,
    natsUs: nats / messages * 1e6,
  });
  const record = (
    name: string,
    protocol: LoadOptions["protocol"],
    value: ReturnType<typeof row>,
  ) => {
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
      try {
        for (const protocol of ["text", "v2-batched"] as const) {
          /** Loads `urls` at once, the clients split between them, each group in a room of its own. */
          const spread = async (
            name: string,
            urls: string[],
            pids: { instances: number[]; nats?: number },
          ) => {
            const groups = split(options.clients, urls.length);
            // One worker thread per group, so that three groups use no more threads than one.
            const workers = urls.length === 1 ? options.workers : 1;
            const loads = await Promise.all(urls.map(async (url, i) => ({
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
            try {
              const result = await measure(loads, options, pids);
              record(
                name,
                protocol,
                row(result.rate, result.instanceCpu, result.natsCpu, result.roomMessages),
              );
            } finally {
              for (const { load } of loads) load.close();
            }
          };
          const natsPids = (instances: { pid: number }[]) => ({
            instances: instances.map((instance) => instance.pid),
            nats: nats.pid,
          });
          await spread(ALONE_ONE, [alone.url], { instances: [alone.pid] });
          await spread(NATS_ONE, [joined[0].url], natsPids([joined[0]]));
          await spread(ALONE_THREE, [alone.url, alone.url, alone.url], { instances: [alone.pid] });
          await spread(NATS_THREE, joined.map((instance) => instance.url), natsPids(joined));
          await spread(ALONE_FOUR, Array(4).fill(alone.url), { instances: [alone.pid] });
          await spread(NATS_FOUR, Array(4).fill(joined[0].url), natsPids([joined[0]]));
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
    instanceCpuPerMessageUs: median(values.map((value) => value.instanceUs)),
    natsCpuPerMessageUs: median(values.map((value) => value.natsUs)),
  }));
  return { rows, quietOverBusyCpu: median(quietRatios) };
}
