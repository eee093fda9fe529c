/**
 * `deno task bench`: the chat server against the runtime's ceiling and its
 * peers, under the same load, in the same run. In every run all servers are
 * up and loaded at once and take turns round by round (the order rotating);
 * the report gives medians of the runs and ratios taken within each run.
 * Prints the report; with --write, also writes docs/benchmarks.md and
 * docs/benchmarks.svg.
 *
 * Options: see USAGE below, or `deno task bench --help`.
 */

import { delay } from "@std/async/delay";
import { parseArgs } from "@std/cli/parse-args";
import { fromFileUrl, join } from "@std/path";
import { barChart } from "./chart.ts";
import {
  ALONE_ONE,
  benchCluster,
  type ClusterReport,
  MIN_ROUNDS,
  NATS_FOUR,
  NATS_ONE,
  NATS_THREE,
  NATS_THREE_INSTANCES,
  WARM_UP_ROUNDS,
} from "./cluster.ts";
import { Load, type LoadOptions, type LoadResult, median, processCpuSeconds } from "./load.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const BENCH = join(ROOT, "bench");
const PEERS_DIR = join(BENCH, "peers");

const USAGE = `Usage: deno task bench [options]

The chat server against the runtime's ceiling and its peers, under the same
load, in the same run; prints medians of the runs and ratios within each run.

  --runs N        runs (default 5)
  --clients N     clients per target (default 32)
  --messages N    messages each client sends a round (default 20)
  --rounds N      rounds per run (default 10)
  --workers N     load-generating workers (default 2)
  --idle N        idle connections for the memory test; 0 skips it (default 10000)
  --no-peers      leave out the peer servers (no npm install)
  --cluster       also measure instances joined through NATS (needs nats-server)
  --write         also write docs/benchmarks.md and docs/benchmarks.svg
  --help          show this and exit`;

const NUMBERS = ["runs", "clients", "messages", "rounds", "workers", "idle"] as const;
const flags = parseArgs(Deno.args, {
  string: [...NUMBERS],
  boolean: ["peers", "write", "cluster", "help"],
  unknown: (flag: string) => {
    console.error(`Unknown option ${flag}\n\n${USAGE}`);
    Deno.exit(2);
  },
  default: {
    runs: "5",
    clients: "32",
    messages: "20",
    rounds: "10",
    workers: "2",
    idle: "10000",
    peers: true,
    write: false,
    cluster: false,
  },
  negatable: ["peers"],
});
if (flags.help) {
  console.log(USAGE);
  Deno.exit(0);
}
for (const name of NUMBERS) {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < (name === "idle" ? 0 : 1)) {
    console.error(
      `--${name} must be a whole number${name === "idle" ? "" : " from 1"}: ${flags[name]}`,
    );
    Deno.exit(2);
  }
}
const options = {
  runs: Number(flags.runs),
  clients: Number(flags.clients),
  messages: Number(flags.messages),
  rounds: Number(flags.rounds),
  workers: Number(flags.workers),
  idle: Number(flags.idle),
};

interface Target {
  name: string;
  protocol: LoadOptions["protocol"];
  /** Whether the server greets each client first (the chat's welcome; the others say nothing). */
  greeted: boolean;
  /** v2: the share of clients that also say they are typing, every round. */
  typing?: number;
  command(port: number): Deno.Command;
}

/** The chat server, with the bench environment in `configDir`. */
const chatServer = (port: number, configDir = join(BENCH, "config")): Deno.Command =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--unstable-kv",
      "src/main.ts",
    ],
    cwd: ROOT,
    env: { CHAT_CONFIG_DIR: configDir, CHAT_ENV: "bench", CHAT_PORT: String(port) },
    stdout: "null",
    stderr: "inherit",
  });
const denoServer = (port: number): Deno.Command => chatServer(port);

/** Scratch space for the KV-backed servers, removed at the end. */
const SCRATCH = await Deno.makeTempDir({ prefix: "chat-bench-" });

/** The chat server keeping room history in a fresh Deno KV file. */
const kvServer = (port: number): Deno.Command => {
  const configDir = Deno.makeTempDirSync({ dir: SCRATCH });
  Deno.mkdirSync(join(configDir, "bench"));
  const source = join(BENCH, "config", "bench");
  Deno.copyFileSync(join(source, "chat.yaml"), join(configDir, "bench", "chat.yaml"));
  Deno.writeTextFileSync(
    join(configDir, "bench", "server.yaml"),
    Deno.readTextFileSync(join(source, "server.yaml")) +
      `history:\n  store: kv\n  path: ${join(configDir, "history.kv")}\n`,
  );
  return chatServer(port, configDir);
};

const BASELINE: Target = {
  name: "Deno baseline",
  protocol: "text",
  greeted: false,
  command: (port) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-net", join(BENCH, "baseline.ts"), String(port)],
      stdout: "null",
    }),
};

const TARGETS: Target[] = [
  { name: "chat, text protocol", protocol: "text", greeted: true, command: denoServer },
  { name: "chat, v2", protocol: "v2", greeted: true, command: denoServer },
  { name: "chat, v2, batched sends", protocol: "v2-batched", greeted: true, command: denoServer },
  {
    name: "chat, v2, batched sends, 10% typing",
    protocol: "v2-batched",
    greeted: true,
    typing: 0.1,
    command: denoServer,
  },
  {
    name: "chat, text protocol, history in KV",
    protocol: "text",
    greeted: true,
    command: kvServer,
  },
  {
    name: "chat, v2, batched sends, history in KV",
    protocol: "v2-batched",
    greeted: true,
    command: kvServer,
  },
  BASELINE,
];
const PEERS: Target[] = [
  {
    name: "Node.js + ws",
    protocol: "text",
    greeted: false,
    command: (port) =>
      new Deno.Command("node", {
        args: [join(PEERS_DIR, "node_ws.mjs"), String(port)],
        cwd: PEERS_DIR,
        stdout: "null",
      }),
  },
  {
    name: "Bun",
    protocol: "text",
    greeted: false,
    command: (port) =>
      new Deno.Command(join(PEERS_DIR, "node_modules", ".bin", "bun"), {
        args: [join(PEERS_DIR, "bun.ts"), String(port)],
        cwd: PEERS_DIR,
        stdout: "null",
      }),
  },
];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

function memoryKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
}

interface Running {
  child: Deno.ChildProcess;
  url: string;
  stop(): Promise<void>;
}

async function start(target: Target): Promise<Running> {
  const port = freePort();
  const child = target.command(port).spawn();
  const deadline = performance.now() + 20_000;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (performance.now() > deadline) throw new Error(`${target.name} did not start`);
      await delay(50);
    }
  }
  return {
    child,
    url: `ws://127.0.0.1:${port}/ws`,
    async stop() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await child.status;
      clearTimeout(killer);
    },
  };
}

interface Sample extends LoadResult {
  serverCpuSeconds: number;
  peakRssMiB: number;
}

/**
 * One run: every target started and loaded at once, then each round run on
 * each target in turn (the order rotating), so that targets are compared
 * under the same machine conditions.
 */
async function measureRun(order: Target[]): Promise<Map<string, Sample>> {
  const running: { target: Target; server: Running; load?: Load; cpuSeconds: number }[] = [];
  try {
    for (const target of order) {
      running.push({ target, server: await start(target), cpuSeconds: 0 });
    }
    for (const entry of running) {
      entry.load = await Load.open({
        url: entry.server.url,
        ...options,
        protocol: entry.target.protocol,
        greeted: entry.target.greeted,
        typing: entry.target.typing,
      });
    }
    for (let round = 0; round <= options.rounds; round++) {
      for (let turn = 0; turn < running.length; turn++) {
        const entry = running[(turn + round) % running.length];
        const cpuBefore = processCpuSeconds(entry.server.child.pid);
        await entry.load!.round();
        if (round > 0) entry.cpuSeconds += processCpuSeconds(entry.server.child.pid) - cpuBefore;
      }
    }
    return new Map(running.map(({ target, server, load, cpuSeconds }) => [target.name, {
      ...load!.result(),
      serverCpuSeconds: cpuSeconds,
      peakRssMiB: memoryKiB(server.child.pid, "VmHWM") / 1024,
    }]));
  } finally {
    for (const { load } of running) load?.close();
    await Promise.all(running.map(({ server }) => server.stop()));
  }
}

/** Server RSS per open idle connection, in KiB. */
async function idleMemory(target: Target, count: number): Promise<number> {
  const server = await start(target);
  const sockets: WebSocket[] = [];
  try {
    const before = memoryKiB(server.child.pid, "VmRSS");
    for (let opened = 0; opened < count; opened += 250) {
      const batch = Array.from({ length: Math.min(250, count - opened) }, () => {
        const socket = new WebSocket(server.url);
        sockets.push(socket);
        return new Promise((resolve, reject) => {
          socket.addEventListener("open", resolve, { once: true });
          socket.addEventListener("error", reject, { once: true });
        });
      });
      await Promise.all(batch);
    }
    // Let the server finish its side of every handshake before reading its memory.
    await delay(1000);
    return (memoryKiB(server.child.pid, "VmRSS") - before) / count;
  } finally {
    for (const socket of sockets) socket.close();
    await server.stop();
  }
}

async function ensurePeers(): Promise<boolean> {
  try {
    await Deno.stat(join(PEERS_DIR, "node_modules", ".bin", "bun"));
    return true;
  } catch {
    console.error("Installing the peers (npm install in bench/peers/)…");
    const { success } = await new Deno.Command("npm", {
      args: ["install", "--no-audit", "--no-fund"],
      cwd: PEERS_DIR,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!success) console.error("Cannot install ws and bun: the peers are left out.");
    return success;
  }
}

const targets = [...TARGETS, ...(flags.peers && await ensurePeers() ? PEERS : [])];
const samples = new Map<string, Sample[]>(targets.map((target) => [target.name, []]));
const ratios = {
  text: [] as number[],
  v2: [] as number[],
  v2Batched: [] as number[],
  v2Bun: [] as number[],
  kvText: [] as number[],
  kvV2: [] as number[],
  typing: [] as number[],
};

for (let run = 0; run < options.runs; run++) {
  const order = [...targets.slice(run % targets.length), ...targets.slice(0, run % targets.length)];
  const thisRun = await measureRun(order);
  for (const [name, sample] of thisRun) {
    samples.get(name)!.push(sample);
    console.error(
      `run ${run + 1}/${options.runs} ${name}: ${Math.round(sample.deliveriesPerSecond)}/s, p50 ${
        sample.p50Ms.toFixed(1)
      } ms, p99 ${sample.p99Ms.toFixed(1)} ms, client CPU ${(sample.clientCpu * 100).toFixed(0)}%`,
    );
  }
  const rate = (name: string) => thisRun.get(name)?.deliveriesPerSecond ?? NaN;
  ratios.text.push(rate("chat, text protocol") / rate("Deno baseline"));
  ratios.v2.push(rate("chat, v2") / rate("Deno baseline"));
  ratios.v2Batched.push(rate("chat, v2, batched sends") / rate("Deno baseline"));
  ratios.v2Bun.push(rate("chat, v2, batched sends") / rate("Bun"));
  ratios.kvText.push(rate("chat, text protocol, history in KV") / rate("chat, text protocol"));
  ratios.kvV2.push(
    rate("chat, v2, batched sends, history in KV") / rate("chat, v2, batched sends"),
  );
  ratios.typing.push(rate("chat, v2, batched sends, 10% typing") / rate("chat, v2, batched sends"));
}

const cluster: ClusterReport | undefined = flags.cluster
  ? await benchCluster({ ...options, runs: Math.max(1, Math.min(options.runs, 3)) })
  : undefined;

const idle = options.idle > 0
  ? {
    chat: await idleMemory(TARGETS[0], options.idle),
    baseline: await idleMemory(BASELINE, options.idle),
  }
  : undefined;

const summary = targets.map((target) => {
  const list = samples.get(target.name)!;
  const of = (pick: (sample: Sample) => number) => median(list.map(pick));
  return {
    name: target.name,
    rate: of((sample) => sample.deliveriesPerSecond),
    roundMs: of((sample) => sample.roundMs),
    p50: of((sample) => sample.p50Ms),
    p99: of((sample) => sample.p99Ms),
    framesPerEvent: of((sample) => sample.framesPerEvent),
    serverCpu: of((sample) => sample.serverCpuSeconds),
    peakRss: of((sample) => sample.peakRssMiB),
    clientCpu: of((sample) => sample.clientCpu),
  };
});

const number = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    : "n/a";
const cpuModel = /model name\s*:\s*(.+)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ??
  "unknown CPU";
const command = `deno task bench${Deno.args.length ? ` ${Deno.args.join(" ")}` : ""}`;
const deliveries = options.clients * options.clients * options.messages;

const table = [
  "| server | deliveries/s | round | p50 latency | p99 latency | frames/event | server CPU | server peak RSS | client CPU |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...summary.map((row) =>
    `| ${row.name} | ${number(row.rate)} | ${number(row.roundMs, 1)} ms | ${
      number(row.p50, 2)
    } ms | ${number(row.p99, 2)} ms | ${number(row.framesPerEvent, 3)} | ${
      number(row.serverCpu, 2)
    } s | ${number(row.peakRss, 1)} MiB | ${number(row.clientCpu * 100)}% |`
  ),
];

const ratioText = (values: number[]) =>
  values.every(Number.isNaN)
    ? "not measured in this run"
    : `**${number(median(values), 2)}x** (${number(Math.min(...values), 2)}–${
      number(Math.max(...values), 2)
    })`;
const rowOf = (name: string) => summary.find((row) => row.name === name);
const check = (met: boolean) => met ? "met" : "**not met**";
const goals = [
  `- Text protocol at least 0.95x the baseline: ${number(median(ratios.text), 2)}x, ${
    check(median(ratios.text) >= 0.95)
  }.`,
  `- History in Deno KV at least 0.8x the memory store: ${
    number(median(ratios.kvText), 2)
  }x with the text protocol, ${check(median(ratios.kvText) >= 0.8)}; ${
    number(median(ratios.kvV2), 2)
  }x with v2 and batched sends, ${check(median(ratios.kvV2) >= 0.8)}.`,
  `- v2 at least 8x the baseline: ${number(median(ratios.v2Batched), 2)}x with batched sends, ${
    check(median(ratios.v2Batched) >= 8)
  }; ${number(median(ratios.v2), 2)}x with one request per frame, ${
    check(median(ratios.v2) >= 8)
  }.`,
  `- Typing costs the messages nothing beyond noise (at least 0.9x): ${
    number(median(ratios.typing), 2)
  }x with 10% of clients typing, ${check(median(ratios.typing) >= 0.9)}.`,
  Number.isFinite(median(ratios.v2Bun))
    ? `- v2 ahead of Bun: ${number(median(ratios.v2Bun), 2)}x, ${check(median(ratios.v2Bun) > 1)}.`
    : "- v2 ahead of Bun: not measured in this run (the peers were left out).",
  `- v2 p99 latency below the baseline's: ${number(rowOf("chat, v2")?.p99 ?? NaN, 1)} ms against ${
    number(rowOf("Deno baseline")?.p99 ?? NaN, 1)
  } ms, ${check((rowOf("chat, v2")?.p99 ?? Infinity) < (rowOf("Deno baseline")?.p99 ?? 0))}.`,
  idle === undefined
    ? "- Idle memory: not measured in this run."
    : `- At most 24 KiB RSS per idle connection: ${number(idle.chat, 1)} KiB, ${
      check(idle.chat <= 24)
    }.`,
];

const report = `# Benchmarks

Produced by \`${command}\` on ${
  new Date().toISOString().slice(0, 10)
}: ${navigator.hardwareConcurrency} cores (${cpuModel}), Deno ${Deno.version.deno}. Every number below comes from that one command;
run it again to refresh this page and [the chart](benchmarks.svg).

## Fan-out under load

${options.clients} clients in one room each send ${options.messages} messages a round; a round ends when
every client has received every message (${
  number(deliveries)
} deliveries). In each of ${options.runs} runs
every server is started and loaded at once, then they take turns round by round in a rotating order,
${options.rounds} rounds each after a warm-up round, so that servers are compared moments apart on a
machine whose speed drifts. Figures are medians of the rounds, then medians over the runs. Latency
is per delivery (the send time travels in the message). "Client CPU" is the load client's CPU time
(${options.workers} worker threads and the main thread) over the rounds' wall time: ${
  options.workers * 100
}% would be every client thread busy.

![Deliveries per second](benchmarks.svg)

${table.join("\n")}

Ratios, each taken within one run, then the median over the runs (and the lowest and highest run):

- chat, text protocol (every protection on) / Deno baseline: ${ratioText(ratios.text)}
- chat, v2 (batched frames out) / Deno baseline: ${ratioText(ratios.v2)}
- chat, v2 with batched sends (batched frames both ways) / Deno baseline: ${
  ratioText(ratios.v2Batched)
}
- chat, v2 with batched sends / Bun: ${ratioText(ratios.v2Bun)}
- chat with history in Deno KV / the same with history in memory: text protocol ${
  ratioText(ratios.kvText)
}, v2 with batched sends ${ratioText(ratios.kvV2)}
- chat, v2 with batched sends, 10% of clients typing / the same without: ${ratioText(ratios.typing)}

The load client (\`bench/ws_client.ts\`) is a minimal WebSocket client over TCP with Nagle's
algorithm off (Deno's built-in client turns it on, and batched rounds then stalled 40 ms on delayed
acknowledgements); it counts messages by scanning the frames' bytes instead of parsing their JSON.
Where the client CPU column nears ${
  options.workers * 100
}%, the client was the bottleneck and that server's figure is a lower bound. Frames per event is
what batching changes: v2 sends a few large frames where the others send one small frame per
delivery.

The chat server runs with \`bench/config/bench/\`: the test environment's rules, all on (flood
control, frame and buffer limits, origin check, metrics), with the flood limits raised so the load
is not throttled. The "history in KV" rows add \`history.store: kv\`: every message is written to
a Deno KV file, in one atomic write per batch, before anyone receives it. The Deno baseline (\`bench/baseline.ts\`) is the ceiling for a Deno server that
sends frame by frame: no rooms, no checks, one JSON serialization per message. Node.js runs the
\`ws\` package (\`bench/peers/node_ws.mjs\`); Bun runs its built-in server with its own
publish/subscribe fan-out (\`bench/peers/bun.ts\`). The text-protocol servers send one frame per
event; v2 sends the events queued for a socket in one turn of the event loop as one frame, joined
once for everyone who gets the same events, which is where its lead comes from. "chat, v2" clients send one request per frame; "batched sends" clients
send each round's messages as one frame holding a JSON array, as a v2 client may. In the "10% typing"
row, one client in ten also says it is typing with each round's messages: far more often than the
once every 2 s a browser sends, so the server passes few on and drops the rest, which is the cost it
must keep off the message path.

## Targets

${goals.join("\n")}

## Several instances through NATS

${clusterSection(cluster)}

## Idle connections

${
  idle === undefined
    ? "Skipped (`--idle 0`)."
    : `${
      number(options.idle)
    } idle WebSocket clients, each connected and then silent: server resident memory grows by
**${number(idle.chat, 1)} KiB per connection** for the chat server and ${
      number(idle.baseline, 1)
    } KiB for the Deno baseline.`
}
`;

const chart = barChart(
  `Deliveries per second, ${options.clients} clients × ${options.messages} messages (median of ${options.runs} runs)`,
  summary.map((row) => ({
    label: row.name,
    value: row.rate,
    caption: `${number(row.rate)}/s`,
    highlight: row.name.startsWith("chat"),
  })),
);

if (flags.write) {
  const reportPath = join(ROOT, "docs", "benchmarks.md");
  const chartPath = join(ROOT, "docs", "benchmarks.svg");
  await Deno.writeTextFile(reportPath, report);
  await Deno.writeTextFile(chartPath, chart);
  // Keep both as `deno fmt` would write them, so `deno task check` stays clean.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", reportPath, chartPath] })
    .output();
  console.log(await Deno.readTextFile(reportPath));
} else {
  console.log(report);
  console.log("(Not written: run with --write to update docs/benchmarks.md and its chart.)");
}

await Deno.remove(SCRATCH, { recursive: true });

/** The report's section on the cluster, from `--cluster`. */
function clusterSection(report: ClusterReport | undefined): string {
  if (report === undefined) {
    return "Not measured in this run (`deno task bench --cluster`, with `nats-server` installed).";
  }
  const rows = report.rows.map((row) =>
    `| ${row.name} | ${row.protocol} | ${number(row.deliveriesPerSecond)} | ${
      number(row.instanceCpuPerMessageUs, 1)
    } µs | ${number(row.natsCpuPerMessageUs, 1)} µs |`
  );
  const ratio = (setup: string, protocol: string) => {
    const found = report.ratios.find((entry) =>
      entry.setup === setup && entry.protocol === protocol
    );
    return found === undefined
      ? "n/a"
      : `${number(found.ratio, 2)}x (${number(found.low, 2)} to ${number(found.high, 2)})`;
  };
  const both = (setup: string) =>
    `text ${ratio(setup, "text")}, v2 with batched sends ${ratio(setup, "v2-batched")}`;
  const cpu = (protocol: string) => {
    const of = (setup: string) =>
      report.rows.find((row) => row.name === setup && row.protocol === protocol)
        ?.instanceCpuPerMessageUs ?? NaN;
    return number(of(NATS_ONE) / of(ALONE_ONE), 2);
  };
  const runs = Math.max(1, Math.min(options.runs, 3));
  return `The same load (${options.clients} clients, ${options.messages} messages each a round) on one
instance alone and on the same instance joined to NATS (nats-server runs on this machine too), with
the clients in one room, split into three rooms, and into four (deliveries counted in all the rooms
together); then the three rooms on three instances on NATS, one room each. Each setup on NATS is
measured round by round in turn with the same load alone, after ${WARM_UP_ROUNDS} warm-up rounds of each,
for ${
    Math.max(options.rounds, MIN_ROUNDS)
  } rounds; a setup's rate is its median round. CPU is per room
message: the instances' together, and nats-server's. Medians of ${runs} runs; every process shares the
same ${navigator.hardwareConcurrency} cores.

| setup | protocol | deliveries/s | instance CPU per message | nats-server CPU per message |
| --- | --- | ---: | ---: | ---: |
${rows.join("\n")}

Deliveries per second on NATS over alone, each ratio taken within a run between rounds measured in
turn, then the median of the runs (the lowest and highest run in brackets):

- One room: ${both(NATS_ONE)}. CPU per room message: ${cpu("text")}x and ${
    cpu("v2-batched")
  }x the instance alone's.
- Three rooms: ${both(NATS_THREE)}.
- Four rooms: ${both(NATS_FOUR)}.
- Three instances on NATS, a room each, against one instance alone with the same three rooms: ${
    both(NATS_THREE_INSTANCES)
  }. They share the cores with nats-server and carry three times the runtime's fixed costs.
- Where the rest goes, from a CPU profile of the four-room case: [cluster_cost.md](cluster_cost.md).
- Interest-based routing: an instance whose users all sit in a quiet room used ${
    number(report.quietOverBusyCpu * 100, 1)
  }% of the CPU of the instance serving the busy room meanwhile.`;
}
