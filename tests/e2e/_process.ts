/** Runs the real entry point as a child process, for signal and startup tests. */

import { TextLineStream } from "@std/streams";
import { fromFileUrl } from "@std/path";
import { within } from "./_client.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** What `deno task start` allows the server. */
const START_PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/** A server started with `deno run src/main.ts`. */
export interface ServerProcess {
  readonly child: Deno.ChildProcess;
  /** `http://127.0.0.1:<port>` (or `https://`), read from the "listening on" log line. */
  readonly httpUrl: string;
  /** Every line the process wrote to stdout or stderr so far. */
  readonly output: string[];
  /** Sends SIGKILL if the process is still running, and waits for it. */
  kill(): Promise<void>;
}

async function collectLines(
  stream: ReadableStream<Uint8Array>,
  output: string[],
  onLine: (line: string) => void,
): Promise<void> {
  const lines: ReadableStream<string> = stream
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new TextLineStream());
  for await (const line of lines) {
    output.push(line);
    onLine(line);
  }
}

/** How to start a server process. */
export interface ServerProcessOptions {
  /** The port to listen on; by default any free one. */
  port?: number;
  /** More environment variables, such as `CHAT_CONFIG_DIR`. */
  env?: Record<string, string>;
  /** A lower limit on open files for the process (`ulimit -n`). */
  maxOpenFiles?: number;
  /** Run with `--allow-all` instead of the permissions `deno task start` grants. */
  allowAll?: boolean;
  /** Flags for the server, such as `--repair`. */
  args?: string[];
}

/** Starts the test environment's server and waits until it listens. */
export async function startServerProcess(
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const run = [
    Deno.execPath(),
    "run",
    "--quiet",
    ...(options.allowAll ? ["--allow-all"] : START_PERMISSIONS),
    "--unstable-kv",
    "src/main.ts",
    ...(options.args ?? []),
  ];
  const command = options.maxOpenFiles === undefined
    ? run
    : ["sh", "-c", `ulimit -n ${options.maxOpenFiles} && exec "$@"`, "sh", ...run];
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: ROOT,
    env: {
      NO_COLOR: "1",
      CHAT_ENV: "test",
      CHAT_PORT: String(options.port ?? 0),
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  let listening: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => listening = resolve);
  const onLine = (line: string): void => {
    const match = /listening on (https?:\/\/\S+)/.exec(line);
    if (match !== null) listening(match[1]);
  };
  const drained = Promise.all([
    collectLines(child.stdout, output, onLine),
    collectLines(child.stderr, output, onLine),
  ]);
  const kill = async (): Promise<void> => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has already exited.
    }
    await child.status;
    await drained;
  };
  try {
    const httpUrl = await within(
      Promise.race([
        url,
        child.status.then((status) => {
          throw new Error(`Server exited with ${status.code}:\n${output.join("\n")}`);
        }),
      ]),
      "the server's listening line",
      20_000,
    );
    return { child, httpUrl, output, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}
