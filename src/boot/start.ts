/**
 * What the entry point does once before serving: open the history store,
 * reach NATS, read the TLS files, and listen. Each failure an operator can
 * fix is a {@linkcode StartError}: one line naming the cause and the fix,
 * and the exit status.
 *
 * @module
 */

import { retry } from "@std/async/retry";
import { getLogger } from "@logtape/logtape";
import { KvStore, StoreDamagedError, StoreOpenError } from "../broker/kv_store.ts";
import { LocalBroker } from "../broker/local.ts";
import { NatsBroker } from "../broker/nats/mod.ts";
import { longestTextFor } from "../broker/nats/publisher.ts";
import type { Config } from "../config/mod.ts";
import type { Metrics } from "../metrics.ts";
import type { Handler } from "../http/handler.ts";
import { createVerifier, KeyFileError, type TokenVerifier } from "../auth/tokens.ts";

/** Exit status for a setting that must change. */
export const EXIT_USAGE = 2;
/** Exit status for something that may work later (a busy port, NATS away). */
export const EXIT_UNAVAILABLE = 1;

/** First wait between tries to reach NATS at start; it doubles up to the cap. */
const NATS_RETRY_FIRST_MS = 250;
const NATS_RETRY_MAX_MS = 5000;

const log = getLogger(["chat", "server"]);

/** The server cannot start; the message says why, `code` is the exit status. */
export class StartError extends Error {
  readonly code: number;

  constructor(message: string, code = EXIT_UNAVAILABLE) {
    super(message);
    this.name = "StartError";
    this.code = code;
  }
}

/** The history store of `history.store: kv`; an unusable path stops the start (exit 2). */
async function openStore(config: Config): Promise<KvStore> {
  const { path } = config.server.history;
  try {
    return await KvStore.open(path, config.chat.historySize, {
      inboxSize: config.chat.pmHistorySize,
    });
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

/**
 * The link to other instances when `cluster` is configured; else the local
 * broker. NATS that is not up yet (a cold `docker compose up`) is tried again
 * with a growing wait, for `cluster.nats.start_timeout` seconds.
 */
export async function createBroker(
  config: Config,
  metrics: Metrics,
  options: { readonly repair?: boolean } = {},
): Promise<NatsBroker | LocalBroker> {
  const { cluster, history } = config.server;
  if (options.repair && (cluster !== undefined || history.store === "memory")) {
    log.warn("--repair does nothing here: it mends the file of history.store kv, alone");
  }
  if (cluster === undefined) {
    if (history.store === "memory") return new LocalBroker();
    const store = await openStore(config);
    try {
      return await LocalBroker.open({ store, metrics, repair: options.repair });
    } catch (error) {
      store.close();
      if (!(error instanceof StoreDamagedError)) throw error;
      const where = `"history.path" in ${config.files.server}`;
      const path = JSON.stringify(history.path);
      throw new StartError(
        error.key === undefined
          ? `Cannot start server as ${where} holds a record Deno KV cannot read (${error.message}): current value is ${path}; move the file aside`
          : `Cannot start server as ${where} holds a damaged record at ${
            JSON.stringify(error.key)
          } (${error.message}): current value is ${path}; move the file aside, or start once with --repair to keep what is readable`,
        EXIT_USAGE,
      );
    }
  }
  if (history.store === "kv") {
    log.info(
      `history.store kv in ${config.files.server} is not used in a cluster: the NATS stream keeps room history`,
    );
  }
  const where = cluster.servers.join(", ");
  const startedAt = Date.now();
  let tries = 0;
  const connect = async (): Promise<NatsBroker> => {
    try {
      return await NatsBroker.connect({
        ...cluster,
        // The stream keeps as many messages of each room's and each inbox's subject.
        historySize: Math.max(config.chat.historySize, config.chat.pmHistorySize),
        maxMessageLen: config.chat.maxMessageLen,
        metrics,
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (/authori[sz]ation|authentication/i.test(reason)) {
        throw new StartError(
          `Cannot start server as NATS at ${where} refused its credentials (${reason}): set CHAT_NATS_USER and CHAT_NATS_PASSWORD, or CHAT_NATS_TOKEN, to what the NATS server expects`,
          EXIT_USAGE,
        );
      }
      if (/certificate/i.test(reason)) {
        throw new StartError(
          `Cannot start server as NATS at ${where} presented a certificate that could not be verified (${reason}): if a private authority signed it, set DENO_CERT to that authority's PEM file; else fix the host name in "cluster.nats.servers" in ${config.files.server}`,
          EXIT_USAGE,
        );
      }
      // The wait `retry` makes next (it has no jitter here, so it is known).
      const wait = Math.min(NATS_RETRY_FIRST_MS * 2 ** tries++, NATS_RETRY_MAX_MS);
      if (Date.now() - startedAt + wait > cluster.startTimeout * 1000) {
        throw new StartError(
          `Cannot start server as NATS at ${where} cannot be reached (${reason}) after ${cluster.startTimeout} s: start NATS, or fix "cluster.nats.servers" in ${config.files.server}`,
        );
      }
      log.warn("NATS at {where} cannot be reached yet ({reason}); trying again in {seconds} s", {
        where,
        reason,
        seconds: wait / 1000,
      });
      throw error;
    }
  };
  const broker = await retry(connect, {
    minTimeout: NATS_RETRY_FIRST_MS,
    maxTimeout: NATS_RETRY_MAX_MS,
    multiplier: 2,
    jitter: 0,
    // The start timeout ends the tries; this only has to be larger than it allows.
    maxAttempts: Number.MAX_SAFE_INTEGER,
    isRetriable: (error: unknown) => !(error instanceof StartError),
  });
  if (cluster.requireAuth && !broker.authRequired) {
    await broker.close();
    throw new StartError(
      `Cannot start server as NATS at ${where} lets clients in without credentials, and ${cluster.authSource} requires a login: give NATS a user and password (deploy/nats.conf shows how) and set CHAT_NATS_USER and CHAT_NATS_PASSWORD, or set CHAT_NATS_AUTH=optional to run on an open NATS anyway`,
      EXIT_USAGE,
    );
  }
  const fits = longestTextFor(broker.maxPayload);
  if (fits < config.chat.maxMessageLen) {
    log.warn(
      "NATS at {where} takes messages of at most {bytes} bytes (its max_payload): messages longer than {fits} characters may be refused to their senders; raise max_payload in the NATS server's config, or lower max_message_len ({max}) in {file}",
      {
        where,
        bytes: broker.maxPayload,
        fits,
        max: config.chat.maxMessageLen,
        file: config.files.chat,
      },
    );
  }
  return broker;
}

/**
 * Token mode's verifier, with the public key file read; a key that cannot
 * be read or used stops the start (exit 2). `undefined` in open mode.
 */
export async function loadVerifier(config: Config): Promise<TokenVerifier | undefined> {
  const { auth } = config.server;
  if (auth.mode === "open") return undefined;
  const file = auth.publicKeyFile;
  const where = `"auth.public_key_file" in ${config.files.server} (or CHAT_AUTH_PUBLIC_KEY_FILE)`;
  let pem: string | undefined;
  if (file !== undefined && auth.algorithm !== "HS256") {
    try {
      pem = await Deno.readTextFile(file);
    } catch (error) {
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new StartError(
        `Cannot start server as ${where} cannot be read (${reason}): current value is ${
          JSON.stringify(file)
        }`,
        EXIT_USAGE,
      );
    }
  }
  try {
    return await createVerifier(auth, pem);
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    throw new StartError(
      `Cannot start server as ${where} ${error.message}: current value is ${JSON.stringify(file)}`,
      EXIT_USAGE,
    );
  }
}

/** The PEM certificate and key of `tls`, read once at start. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** Reads the TLS files; one that cannot be read stops the start (exit 2). */
export async function readTls(config: Config): Promise<TlsFiles | undefined> {
  const { tls } = config.server;
  if (tls === undefined) return undefined;
  const read = async (key: "cert_file" | "key_file", path: string): Promise<string> => {
    const where = `"tls.${key}" in ${config.files.server} (or CHAT_TLS_${key.toUpperCase()})`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new StartError(
        `Cannot start server as ${where} cannot be read (${reason}): current value is ${
          JSON.stringify(path)
        }; point it at a PEM file`,
        EXIT_USAGE,
      );
    }
    if (!text.includes("-----BEGIN ")) {
      throw new StartError(
        `Cannot start server as ${where} is not a PEM file: current value is ${
          JSON.stringify(path)
        }`,
        EXIT_USAGE,
      );
    }
    return text;
  };
  return { cert: await read("cert_file", tls.certFile), key: await read("key_file", tls.keyFile) };
}

/**
 * Starts serving `handler` on the configured port, or on `port` when given
 * (listening again on the port first chosen); a port that cannot be had, or
 * TLS files Deno cannot use, are a {@linkcode StartError}.
 */
export function listen(
  config: Config,
  handler: Handler,
  tls: TlsFiles | undefined,
  port = config.server.port,
): Deno.HttpServer<Deno.NetAddr> {
  const { host } = config.server;
  const scheme = tls === undefined ? "http" : "https";
  try {
    return Deno.serve({
      hostname: host,
      port,
      ...tls,
      onListen: ({ hostname, port }) => {
        const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
        const url = `${scheme}://${shown}:${port}`;
        const everywhere = hostname === "0.0.0.0" || hostname === "::"
          ? ", on every network interface"
          : "";
        // Spelled out rather than a placeholder, so the JSON line reads as the text one does.
        log.info(`listening on ${url} (environment ${config.env}${everywhere})`, {
          url,
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
    if (tls !== undefined) {
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new StartError(
        `Cannot start server as "tls.cert_file" and "tls.key_file" in ${config.files.server} are not a certificate and its private key (${reason}): point them at the PEM files of one pair`,
        EXIT_USAGE,
      );
    }
    throw error;
  }
}
