/**
 * The NATS configs we ship let only chat instances in, and only on the
 * chat's subjects; an instance that requires a login refuses an open NATS.
 */

import { assertEquals } from "@std/assert";
import { fromFileUrl } from "@std/path";
import { TextLineStream } from "@std/streams";
import { startCluster } from "./_cluster.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable, startNats } from "./_nats.ts";
import { startServerProcess } from "./_process.ts";

const ignore = !natsAvailable();
const options = { ignore, sanitizeOps: false, sanitizeResources: false };

/**
 * Speaks NATS's text protocol to `url` by hand: logs in (or not), sends
 * `commands`, then a PING, and returns the errors the server answered with.
 */
async function natsErrors(
  url: string,
  login: { user: string; pass: string } | undefined,
  commands: readonly string[],
): Promise<string[]> {
  const port = Number(new URL(url).port);
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  const stream: ReadableStream<string> = connection.readable
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new TextLineStream());
  const lines = stream.getReader();
  const errors: string[] = [];
  try {
    await lines.read(); // INFO
    const connect = JSON.stringify({ verbose: false, pedantic: false, ...login });
    const text = [`CONNECT ${connect}`, ...commands, "PING", ""].join("\r\n");
    await connection.write(new TextEncoder().encode(text));
    while (true) {
      const { value, done } = await lines.read();
      if (done || value === "PONG") return errors;
      if (value.startsWith("-ERR")) errors.push(value);
    }
  } finally {
    await lines.cancel();
    try {
      connection.close();
    } catch {
      // Closed already, with its readable side.
    }
  }
}

Deno.test({
  name: "the shipped NATS configs let in only chat instances, on the chat's subjects",
  ...options,
  async fn(t) {
    for (const file of ["deploy/nats.conf", "deploy/nats-local.conf"]) {
      await t.step(file, async () => {
        // A letter first, as the configs say: nats-server may read a leading digit as a number.
        const password = `pw${crypto.randomUUID()}`;
        const cluster = await startCluster({
          instances: 2,
          natsServer: {
            shipped: {
              file: fromFileUrl(new URL(`../../${file}`, import.meta.url)),
              env: { NATS_USER: "chat", NATS_PASSWORD: password },
            },
          },
          env: { CHAT_NATS_USER: "chat", CHAT_NATS_PASSWORD: password, CHAT_NATS_AUTH: "required" },
        });
        try {
          // The instances do all they do within their permissions.
          const { client: ann } = await cluster.v2(0, { type: "hello", name: "Ann" });
          const { client: bob } = await cluster.v2(1, { type: "hello", name: "Bob" });
          ann.send(JSON.stringify({ type: "say", text: "across" }));
          await bob.waitFor((frame) => frame.type === "message" && frame.text === "across");
          ann.send(JSON.stringify({ type: "pm", to: "Bob", text: "psst" }));
          await bob.waitFor((frame) => frame.type === "private" && frame.text === "psst");

          // Nothing gets in without the login...
          assertEquals(await natsErrors(cluster.nats.url, undefined, []), [
            "-ERR 'Authorization Violation'",
          ]);
          // ...and with it, nothing but the chat's subjects.
          const login = { user: "chat", pass: password };
          assertEquals(
            await natsErrors(cluster.nats.url, login, ["PUB other.subject 2", "hi", "SUB > 1"]),
            [
              `-ERR 'Permissions Violation for Publish to "other.subject"'`,
              `-ERR 'Permissions Violation for Subscription to ">"'`,
            ],
          );
        } finally {
          await cluster.dispose();
        }
      });
    }
  },
});

Deno.test({
  name: "an instance that requires a login refuses an open NATS, in one line, with exit code 2",
  ...options,
  async fn() {
    const nats = await startNats();
    const configDir = await testConfigDir({
      server: `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    auth: required\n`,
    });
    try {
      const server = startServerProcess({ env: { CHAT_CONFIG_DIR: configDir } });
      const error = await server.then(() => "started", (error: Error) => error.message);
      const lines = error.split("\n");
      assertEquals(lines[0], "Server exited with 2:");
      assertEquals(
        lines.slice(1).join("\n").replace(nats.url, "<url>").replace(configDir, "<dir>"),
        `Cannot start server as NATS at <url> lets clients in without credentials, and "cluster.nats.auth" in <dir>/test/server.yaml requires a login: give NATS a user and password (deploy/nats.conf shows how) and set CHAT_NATS_USER and CHAT_NATS_PASSWORD, or set CHAT_NATS_AUTH=optional to run on an open NATS anyway`,
      );
    } finally {
      await nats.dispose();
      await Deno.remove(configDir, { recursive: true });
    }
  },
});
