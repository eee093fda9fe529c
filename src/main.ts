/**
 * Entry point: reads flags and config, sets up logging, starts the server and
 * stops it cleanly on SIGINT or SIGTERM.
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { parseArgs } from "@std/cli/parse-args";
import { getLogger } from "@logtape/logtape";
import { LocalBroker } from "./broker/local.ts";
import { NatsBroker } from "./broker/nats.ts";
import { Chatroom } from "./chat/mod.ts";
import { type Config, ConfigError, type ConfigFlags, loadConfig } from "./config/mod.ts";
import { setupLogging } from "./log.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { Admission } from "./admission.ts";
import { watchDescriptors } from "./resources.ts";
import { createHandler, type Handler } from "./server.ts";
import { KvStore, StoreOpenError } from "./broker/kv_store.ts";
import { loadStaticFiles } from "./static.ts";

const USAGE = `Usage: chat-server [options]

Options:
  --env <name>         environment: a folder of the config directory (default: CHAT_ENV or "local")
  --host <address>     address to listen on (default: CHAT_HOST or the config file)
  --port <number>      port to listen on, 0 for any free port (default: CHAT_PORT or the config file)
  --config-dir <path>  directory of environment folders (default: CHAT_CONFIG_DIR or config/)
  --healthcheck        ask the server configured here for /healthz; exit 0 when healthy
  --help               show this help`;

/** Clients get this long to take their close frame before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;
const HEALTHCHECK_TIMEOUT_MS = 2000;
/** How often lingering sessions are looked at; one outlives `session_linger` by at most this. */
const SESSION_CHECK_INTERVAL_MS = 1000;
/** How often open file descriptors are counted. */
const DESCRIPTOR_SAMPLE_MS = 1000;
/** Wait before listening again after accepting failed. */
const ACCEPT_RETRY_MS = 1000;
/** How often idle rooms are looked for; a room outlives its TTL by at most this. */
const ROOM_SWEEP_INTERVAL_MS = 60_000;
const EXIT_USAGE = 2;
const EXIT_UNAVAILABLE = 1;

/** The server cannot start; the message says why, `code` is the exit status. */
class StartError extends Error {
  readonly code: number;

  constructor(message: string, code = EXIT_UNAVAILABLE) {
    super(message);
    this.name = "StartError";
    this.code = code;
  }
}

const log = getLogger(["chat", "server"]);

function readFlags(args: string[]): ConfigFlags & { help: boolean; healthcheck: boolean } {
  const unknown: string[] = [];
  const flags = parseArgs(args, {
    string: ["env", "host", "port", "config-dir"],
    boolean: ["help", "healthcheck"],
    unknown: (arg: string) => {
      unknown.push(arg);
      return false;
    },
  });
  if (unknown.length > 0) {
    throw new ConfigError(`Cannot start server as ${unknown.join(" ")} is not an option\n${USAGE}`);
  }
  return {
    env: flags.env,
    host: flags.host,
    port: flags.port,
    configDir: flags["config-dir"],
    help: flags.help,
    healthcheck: flags.healthcheck,
  };
}

/** The address a local client reaches a server listening on `host` at. */
function localAddress(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

async function healthcheck(config: Config): Promise<number> {
  const url = `http://${localAddress(config.server.host)}:${config.server.port}/healthz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) });
    await response.body?.cancel();
    return response.ok ? 0 : 1;
  } catch {
    return 1;
  }
}

/** The history store of `history.store: kv`; an unusable path stops the start (exit 2). */
async function openStore(config: Config): Promise<KvStore> {
  const { path } = config.server.history;
  try {
    return await KvStore.open(path, config.chat.historySize);
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    throw new StartError(
      `Cannot start server as "history.path" in ${config.files.server} cannot be opened as a Deno KV store (${error.message}): current value is ${
        JSON.stringify(path)
      }; point it at a file in a writable folder, or move the damaged file away`,
      EXIT_USAGE,
    );
  }
}

/** The link to other instances when `cluster` is configured; else the local broker. */
async function createBroker(config: Config, metrics: Metrics): Promise<NatsBroker | LocalBroker> {
  const { cluster, history } = config.server;
  if (cluster === undefined) {
    if (history.store === "memory") return new LocalBroker();
    return await LocalBroker.open({ store: await openStore(config), metrics });
  }
  try {
    return await NatsBroker.connect({ ...cluster, historySize: config.chat.historySize, metrics });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartError(
      `Cannot start server as NATS at ${cluster.servers.join(", ")} cannot be reached: ${reason}`,
    );
  }
}

/**
 * Starts serving `handler` on the configured port, or on `port` when given
 * (listening again on the port first chosen); a port that cannot be had is
 * a {@linkcode StartError}.
 */
function listen(
  config: Config,
  handler: Handler,
  port = config.server.port,
): Deno.HttpServer<Deno.NetAddr> {
  const { host } = config.server;
  try {
    return Deno.serve({
      hostname: host,
      port,
      onListen: ({ hostname, port }) => {
        const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
        log.info("listening on {url} (environment {env})", {
          url: `http://${shown}:${port}`,
          env: config.env,
        });
      },
    }, handler);
  } catch (error) {
    const where = `"host" and "port" in ${config.files.server} (or --host, --port)`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new StartError(
        `Cannot start server as port ${port} on ${host} is in use: stop what uses it, or choose another port with ${where}`,
        EXIT_UNAVAILABLE,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new StartError(
        `Cannot start server as ${host} is not an address of this machine: choose one it has (127.0.0.1 or 0.0.0.0) with ${where}`,
        EXIT_USAGE,
      );
    }
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      throw new StartError(
        `Cannot start server as port ${port} on ${host} may not be used by this user: choose a port above 1023 with ${where}`,
        EXIT_USAGE,
      );
    }
    throw error;
  }
}

async function serve(config: Config): Promise<void> {
  const metrics = createMetrics();
  // Nothing may end the process unnoticed: a failure nobody awaited is logged and counted.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    metrics.errors.inc();
    log.error("Unexpected failure, carrying on: {error}", { error: event.reason });
  });
  const staticFiles = await loadStaticFiles();
  const broker = await createBroker(config, metrics);
  const chatroom = new Chatroom({ config: config.chat, metrics, broker });
  await broker.start();
  const descriptors = watchDescriptors(DESCRIPTOR_SAMPLE_MS);
  if (descriptors !== undefined) {
    metrics.gauges.push(
      {
        name: "process_open_fds",
        help: "Open file descriptors.",
        read: () => descriptors.current().open,
      },
      {
        name: "process_max_fds",
        help: "The limit on open file descriptors.",
        read: () => descriptors.current().limit,
      },
    );
  }
  const admission = new Admission(config.server.limits);
  const handler = createHandler({
    chatroom,
    limits: config.server.limits,
    metrics,
    staticFiles,
    healthy: () => broker.healthy,
    descriptors: descriptors?.current,
    admission,
  });
  let server = listen(config, handler);

  const { roomIdleTtl, unusedRoomTtl } = config.chat;
  const sweepEvery = Math.max(
    1000,
    Math.min(ROOM_SWEEP_INTERVAL_MS, roomIdleTtl * 1000, unusedRoomTtl * 1000),
  );
  setInterval(() => {
    chatroom.sweepRooms();
    admission.sweep();
  }, sweepEvery);
  setInterval(() => chatroom.expireSessions(), SESSION_CHECK_INTERVAL_MS);

  let stopping = false;
  const stop = async (signal: Deno.Signal): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info("Received {signal}; closing {count} connections", {
      signal,
      count: chatroom.size,
    });
    chatroom.shutdown();
    descriptors?.stop();
    await Promise.race([
      Promise.all([server.shutdown(), broker.close()]),
      delay(SHUTDOWN_GRACE_MS),
    ]);
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop(signal));
  }

  // When accepting fails (out of file descriptors, say), the listener stops: the
  // connections already open go on, and a new listener takes over once it can.
  while (!stopping) {
    try {
      await server.finished;
    } catch (error) {
      if (stopping) break;
      metrics.acceptFailures.inc();
      log.error("Cannot accept connections ({error}); accepting again in {seconds} s", {
        error: error instanceof Error ? error.message : String(error),
        seconds: ACCEPT_RETRY_MS / 1000,
      });
      await delay(ACCEPT_RETRY_MS);
      if (stopping) break;
      try {
        server = listen(config, handler, server.addr.port);
      } catch (retryError) {
        log.error("Cannot listen again yet: {error}", { error: retryError });
      }
    }
  }
}

async function main(args: string[]): Promise<number | undefined> {
  let config: Config;
  let healthcheckOnly: boolean;
  try {
    const flags = readFlags(args);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    healthcheckOnly = flags.healthcheck;
    config = await loadConfig({ flags });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return EXIT_USAGE;
  }
  if (healthcheckOnly) return await healthcheck(config);
  await setupLogging(config.server.log);
  try {
    await serve(config);
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    console.error(error.message);
    return error.code;
  }
  return undefined;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code !== undefined) Deno.exit(code);
}
