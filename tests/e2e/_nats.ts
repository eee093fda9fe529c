/** A private nats-server on loopback (Debian's package), with JetStream and a WebSocket listener. */

import { TextLineStream } from "@std/streams";
import { join } from "@std/path";
import { within } from "./_client.ts";

const INSTALL_HINT = "apt-get install nats-server";

function natsServerInstalled(): boolean {
  try {
    return new Deno.Command("nats-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Whether the cluster tests run here. Without `nats-server` they are skipped
 * with the command that installs it, except in CI, where that is a failure.
 */
export function natsAvailable(): boolean {
  if (natsServerInstalled()) return true;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`Cluster tests need nats-server: run \`${INSTALL_HINT}\``);
  }
  console.warn(`Skipping cluster tests: nats-server is missing (\`${INSTALL_HINT}\`)`);
  return false;
}

/** A free TCP port on 127.0.0.1, as the kernel hands out for port 0. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A running nats-server; `stop` and `start` keep its ports and its JetStream data. */
export interface NatsServer {
  /** The client port's URL (`tls://` when started with `tls`). */
  readonly url: string;
  /** The WebSocket listener's URL. */
  readonly wsUrl: string;
  start(): Promise<void>;
  /** Stops it with `signal` (SIGTERM by default; SIGKILL for a crash). */
  stop(signal?: Deno.Signal): Promise<void>;
  /** Stops the server and deletes its data. */
  dispose(): Promise<void>;
}

/** How {@linkcode startNats} sets nats-server up. */
export interface NatsOptions {
  /** Clients must log in with this user and password. */
  readonly auth?: { readonly user: string; readonly password: string };
  /** `false` leaves it stopped: its address is known, `start()` starts it. */
  readonly started?: boolean;
  /** The client port requires TLS with this certificate. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** More lines of nats-server config, such as `max_payload: 4096`. */
  readonly config?: readonly string[];
  /**
   * Runs a shipped config file instead (its `listen` and `store_dir` moved to
   * a private port and folder), with these environment variables.
   */
  readonly shipped?: { readonly file: string; readonly env: Record<string, string> };
}

/** Starts nats-server in a temporary directory and waits until it is ready. */
export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  const dir = await Deno.makeTempDir({ prefix: "chat-nats-" });
  const port = freePort();
  const wsPort = freePort();
  const config = join(dir, "nats.conf");
  const shipped = options.shipped === undefined
    ? undefined
    : (await Deno.readTextFile(options.shipped.file))
      .replace(/^listen: .*$/m, `listen: "127.0.0.1:${port}"`)
      .replace(/^( *store_dir: ).*$/m, `$1"${join(dir, "jetstream")}"`) +
      `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }\n`;
  await Deno.writeTextFile(
    config,
    shipped ?? [
      `listen: "127.0.0.1:${port}"`,
      ...(options.tls === undefined
        ? []
        : [`tls { cert_file: "${options.tls.certFile}", key_file: "${options.tls.keyFile}" }`]),
      ...(options.auth === undefined
        ? []
        : [`authorization { user: "${options.auth.user}", password: "${options.auth.password}" }`]),
      `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`,
      `jetstream { store_dir: "${join(dir, "jetstream")}" }`,
      ...(options.config ?? []),
      "",
    ].join("\n"),
  );
  let child: Deno.ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const process = new Deno.Command("nats-server", {
      args: ["-c", config],
      env: options.shipped?.env,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    child = process;
    const lines: ReadableStream<string> = process.stderr
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new TextLineStream());
    const reader = lines.getReader();
    const said: string[] = [];
    await within(
      (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`nats-server exited before it was ready: ${said.join(" | ")}`);
          said.push(value);
          if (value.includes("Server is ready")) break;
        }
      })(),
      "nats-server to be ready",
      10_000,
    );
    // Keep draining its log so that it never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done);
    })();
  };
  const stop = async (signal: Deno.Signal = "SIGTERM"): Promise<void> => {
    if (child === undefined) return;
    child.kill(signal);
    await child.status;
    child = undefined;
  };
  if (options.started !== false) await start();
  return {
    url: `${options.tls === undefined ? "nats" : "tls"}://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    start,
    stop,
    async dispose() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
