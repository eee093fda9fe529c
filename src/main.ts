/**
 * Entry point: reads flags and config, sets up logging, starts the server and
 * stops it cleanly on SIGINT or SIGTERM.
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { parseArgs } from "@std/cli/parse-args";
import { getLogger } from "@logtape/logtape";
import { Chatroom } from "./chat/mod.ts";
import {
  type Config,
  ConfigError,
  type ConfigFlags,
  configWarnings,
  loadConfig,
} from "./config/mod.ts";
import { setupLogging } from "./boot/log.ts";
import { createMetrics } from "./metrics.ts";
import { Admission } from "./http/admission.ts";
import { watchDescriptors } from "./boot/resources.ts";
import { createHandler } from "./http/handler.ts";
import {
  createBroker,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
  listen,
  loadVerifier,
  readTls,
  StartError,
} from "./boot/start.ts";
import { loadStaticFiles } from "./http/static.ts";
import { isCaCertificate } from "./boot/certificate.ts";
import { probeHealth } from "./boot/healthcheck.ts";

const USAGE = `Usage: chat-server [options]

Options:
  --env <name>         environment: a folder of the config directory (default: CHAT_ENV or "local")
  --host <address>     address to listen on (default: CHAT_HOST or the config file)
  --port <number>      port to listen on, 0 for any free port (default: CHAT_PORT or the config file)
  --config-dir <path>  directory of environment folders (default: CHAT_CONFIG_DIR or config/)
  --healthcheck        ask the server configured here for /healthz; exit 0 when healthy
  --repair             history.store kv: drop damaged records (each logged), keep the rest
  --dev                for deno task dev: a signal stops the server at once, watcher included
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

const log = getLogger(["chat", "server"]);

function readFlags(
  args: string[],
): ConfigFlags & { help: boolean; healthcheck: boolean; dev: boolean; repair: boolean } {
  const unknown: string[] = [];
  const flags = parseArgs(args, {
    string: ["env", "host", "port", "config-dir"],
    boolean: ["help", "healthcheck", "dev", "repair"],
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
    dev: flags.dev,
    repair: flags.repair,
  };
}

async function healthcheck(config: Config): Promise<number> {
  const { healthy, line } = await probeHealth(config, HEALTHCHECK_TIMEOUT_MS);
  if (line !== undefined) console.error(line);
  return healthy ? 0 : 1;
}

async function serve(config: Config, options: { dev: boolean; repair: boolean }): Promise<void> {
  const metrics = createMetrics();
  // Nothing may end the process unnoticed: a failure nobody awaited is logged and counted.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    metrics.errors.inc();
    log.error("Unexpected failure, carrying on: {error}", { error: event.reason });
  });
  for (const warning of configWarnings(config)) log.warning(warning);
  const staticFiles = await loadStaticFiles();
  const tls = await readTls(config);
  if (tls !== undefined && isCaCertificate(tls.cert)) {
    log.warning(
      `The certificate in "tls.cert_file" is a CA certificate (CA:TRUE): browsers and curl accept it, but Deno clients and --healthcheck refuse it. Make it with -addext basicConstraints=critical,CA:FALSE (see README, "TLS")`,
    );
  }
  const verifier = await loadVerifier(config);
  const broker = await createBroker(config, metrics, { repair: options.repair });
  const { auth } = config.server;
  const chatroom = new Chatroom({
    config: config.chat,
    metrics,
    broker,
    auth: {
      tokenMode: auth.mode === "token",
      verify: verifier === undefined ? undefined : (token) => verifier.verify(token),
      expiryWarning: auth.expiryWarning,
      maxDevices: auth.maxDevices,
      operatorPassword: auth.operatorPassword,
    },
  });
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
    verifier,
    cluster: "cluster" in broker ? broker.cluster : undefined,
    apiKeys: config.server.apiKeys,
  });
  let server = listen(config, handler, tls);

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
  // Under `deno run --watch` exiting would end only this run, and the watcher
  // would go on; so `deno task dev` leaves signals their default: stop at once.
  if (!options.dev) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => stop(signal));
    }
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
        server = listen(config, handler, tls, server.addr.port);
      } catch (retryError) {
        log.error("Cannot listen again yet: {error}", { error: retryError });
      }
    }
  }
}

async function main(args: string[]): Promise<number | undefined> {
  let config: Config;
  let flags: ReturnType<typeof readFlags>;
  try {
    flags = readFlags(args);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    config = await loadConfig({ flags });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return EXIT_USAGE;
  }
  if (flags.healthcheck) return await healthcheck(config);
  await setupLogging(config.server.log);
  try {
    await serve(config, { dev: flags.dev, repair: flags.repair });
  } catch (error) {
    if (error instanceof StartError) {
      console.error(error.message);
      return error.code;
    }
    // Whatever went wrong, a server that is not listening never says it is fine.
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.error(`Cannot start server: ${reason}`);
    return EXIT_UNAVAILABLE;
  }
  return undefined;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code !== undefined) Deno.exit(code);
}
