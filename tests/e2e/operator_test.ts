/**
 * The operator's path against the real entry point: TLS, token settings,
 * NATS that comes up late or wants credentials, and `deno task dev`.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";
import { join } from "@std/path";
import { rawUpgrade, within } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { natsAvailable, startNats } from "./_nats.ts";
import { startServerProcess } from "./_process.ts";
import { opensslAvailable, selfSignedCertificate } from "./_tls.ts";

const ROOT = new URL("../../", import.meta.url);

/** Runs the entry point with `args` and `env` until it exits (at most 15 s): its code and lines. */
async function run(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", CHAT_ENV: "test", CHAT_PORT: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const lines = (new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr))
    .split("\n").filter((line) => line !== "");
  return { code, lines };
}

Deno.test({
  name: "TLS: https and wss with the configured certificate",
  ignore: !opensslAvailable(),
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "chat-tls-" });
    try {
      const { certFile, keyFile, cert } = await selfSignedCertificate(dir);
      const env = { CHAT_TLS_CERT_FILE: certFile, CHAT_TLS_KEY_FILE: keyFile };
      const server = await startServerProcess({ env });
      const port = Number(new URL(server.httpUrl).port);
      try {
        await t.step("it listens on https", () => {
          assertMatch(server.httpUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
        });

        await t.step("GET /healthz over https", async () => {
          const client = Deno.createHttpClient({ caCerts: [cert] });
          const response = await fetch(`https://localhost:${port}/healthz`, { client });
          assertEquals([response.status, (await response.json()).status], [200, "ok"]);
          client.close();
        });

        await t.step("a wss client chats", async () => {
          const { status, conn, after } = await rawUpgrade(port, { caCerts: [cert] });
          assertEquals(status, 101);
          let received = new TextDecoder().decode(after);
          const chunk = new Uint8Array(4096);
          while (!received.includes("Welcome, ")) {
            const read = await within(conn.read(chunk), "the welcome");
            if (read === null) break;
            received += new TextDecoder().decode(chunk.subarray(0, read));
          }
          conn.close();
          assert(received.includes("Welcome, "), received);
        });

        await t.step("--healthcheck trusts the server's own certificate", async () => {
          const { code } = await run(["--healthcheck", "--port", String(port)], env);
          assertEquals(code, 0);
        });
      } finally {
        await server.kill();
      }

      const other = await selfSignedCertificate(await Deno.makeTempDir({ dir }));
      const broken: [string, Record<string, string>, RegExp][] = [
        [
          "a certificate file that does not exist",
          { ...env, CHAT_TLS_CERT_FILE: join(dir, "missing.pem") },
          /^Cannot start server as "tls\.cert_file" in .*server\.yaml \(or CHAT_TLS_CERT_FILE\) cannot be read \(.*\): current value is ".*missing\.pem"; point it at a PEM file$/,
        ],
        [
          "a key file that is not PEM",
          { ...env, CHAT_TLS_KEY_FILE: join(ROOT.pathname, "README.md") },
          /^Cannot start server as "tls\.key_file" in .*\(or CHAT_TLS_KEY_FILE\) is not a PEM file: current value is ".*README\.md"$/,
        ],
        [
          "a key that is not the certificate's",
          { ...env, CHAT_TLS_KEY_FILE: other.keyFile },
          /^Cannot start server as "tls\.cert_file" and "tls\.key_file" in .*server\.yaml are not a certificate and its private key \(.*\): point them at the PEM files of one pair$/,
        ],
      ];
      for (const [what, brokenEnv, line] of broken) {
        await t.step(`${what}: exit 2, one line`, async () => {
          const { code, lines } = await run([], brokenEnv);
          assertEquals(code, 2, lines.join("\n"));
          assertEquals(lines.length, 1, lines.join("\n"));
          assertMatch(lines[0], line);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("token settings and secrets that cannot work stop the start with one line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "chat-auth-" });
  try {
    const notAKey = join(dir, "not-a-key.pem");
    await Deno.writeTextFile(
      notAKey,
      "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    );
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        "token mode without a secret",
        { CHAT_AUTH_MODE: "token" },
        // The mode came from the environment: the line names the variable, not the file.
        /^Cannot start server as CHAT_AUTH_SECRET is not set: CHAT_AUTH_MODE=token with HS256 verifies tokens with this shared secret$/,
      ],
      [
        "a secret too short for HS256",
        { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: "short" },
        /^Cannot start server as CHAT_AUTH_SECRET must be at least 32 characters with at least 8 different ones, not mostly common words or runs for HS256, such as the output of "openssl rand -hex 32": current value has 5 characters$/,
      ],
      [
        "a public key file that is not a key",
        { CHAT_AUTH_MODE: "token", CHAT_AUTH_PUBLIC_KEY_FILE: notAKey },
        /^Cannot start server as CHAT_AUTH_SECRET is not set/,
      ],
      [
        "an API key too short to be safe",
        { CHAT_API_KEYS: "good-key-7f3a9c21d4e8,short" },
        /^Cannot start server as CHAT_API_KEYS must hold comma-separated keys of at least 16 characters with at least 8 different ones, not mostly common words or runs, such as the output of "openssl rand -hex 16": key 2 has 5 characters$/,
      ],
      [
        "an API key of one character repeated",
        { CHAT_API_KEYS: "aaaaaaaaaaaaaaaa" },
        /^Cannot start server as CHAT_API_KEYS must hold comma-separated keys of at least 16 characters with at least 8 different ones, not mostly common words or runs, such as the output of "openssl rand -hex 16": key 1 has only 1 different character$/,
      ],
      [
        "an operator password of one character repeated",
        { CHAT_OPERATOR_PASSWORD: "aaaaaaaaaaaaaaaa" },
        /^Cannot start server as CHAT_OPERATOR_PASSWORD must be at least 16 characters with at least 8 different ones, not mostly common words or runs, such as the output of "openssl rand -hex 16": current value has only 1 different character$/,
      ],
      [
        "a NATS user without a password",
        { CHAT_NATS_USER: "chat" },
        /^Cannot start server as CHAT_NATS_PASSWORD is not set: NATS credentials need both CHAT_NATS_USER and CHAT_NATS_PASSWORD$/,
      ],
    ];
    for (const [what, env, line] of cases) {
      await t.step(`${what}: exit 2`, async () => {
        const { code, lines } = await run([], env);
        assertEquals(code, 2, lines.join("\n"));
        assertEquals(lines.length, 1, lines.join("\n"));
        assertMatch(lines[0], line);
      });
    }
    await t.step("an ES256 public key file that is not a key: exit 2", async () => {
      const configDir = await testConfigDir({
        server: "auth:\n  mode: token\n  algorithm: ES256\n",
      });
      try {
        const { code, lines } = await run([], {
          CHAT_CONFIG_DIR: configDir,
          CHAT_AUTH_PUBLIC_KEY_FILE: notAKey,
        });
        assertEquals([code, lines.length], [2, 1], lines.join("\n"));
        assertMatch(
          lines[0],
          /^Cannot start server as "auth\.public_key_file" in .*\(or CHAT_AUTH_PUBLIC_KEY_FILE\) is not a PEM public key \(SPKI\) for ES256: .*: current value is ".*not-a-key\.pem"$/,
        );
      } finally {
        await Deno.remove(configDir, { recursive: true });
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "NATS: waited for at start, and logged in to",
  ignore: !natsAvailable(),
  fn: async (t) => {
    await t.step("an instance started before NATS waits for it, then serves", async () => {
      const nats = await startNats({ started: false });
      const configDir = await testConfigDir({
        server: `cluster:\n  nats:\n    servers: ["${nats.url}"]\n`,
      });
      const starting = startServerProcess({ env: { CHAT_CONFIG_DIR: configDir } });
      try {
        await delay(1500);
        await nats.start();
        const server = await starting;
        assert(
          server.output.some((line) =>
            /NATS at nats:\S+ cannot be reached yet \(.*\); trying again in [\d.]+ s/.test(line)
          ),
          server.output.join("\n"),
        );
        await server.kill();
      } finally {
        await starting.then((server) => server.kill(), () => {});
        await nats.dispose();
        await Deno.remove(configDir, { recursive: true });
      }
    });

    await t.step("NATS that never comes: exit 1 after start_timeout", async () => {
      const nats = await startNats({ started: false });
      const configDir = await testConfigDir({
        server: `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    start_timeout: 1\n`,
      });
      try {
        const { code, lines } = await run([], { CHAT_CONFIG_DIR: configDir });
        assertEquals(code, 1, lines.join("\n"));
        assertMatch(
          lines[lines.length - 1],
          /^Cannot start server as NATS at nats:\S+ cannot be reached \(.*\) after 1 s: start NATS, or fix "cluster\.nats\.servers" in .*server\.yaml$/,
        );
      } finally {
        await nats.dispose();
        await Deno.remove(configDir, { recursive: true });
      }
    });

    // The WebSocket listener works as the client port does.
    await t.step("NATS with a password: refused without it, served with it", async () => {
      const nats = await startNats({ auth: { user: "chat", password: "nats-secret-123" } });
      const configDir = await testConfigDir({
        server: `cluster:\n  nats:\n    servers: ["${nats.wsUrl}"]\n`,
      });
      try {
        const refused = await run([], { CHAT_CONFIG_DIR: configDir });
        assertEquals(refused.code, 2, refused.lines.join("\n"));
        assertMatch(
          refused.lines[refused.lines.length - 1],
          /^Cannot start server as NATS at ws:\S+ refused its credentials \(.*\): set CHAT_NATS_USER and CHAT_NATS_PASSWORD, or CHAT_NATS_TOKEN, to what the NATS server expects$/,
        );
        const server = await startServerProcess({
          env: {
            CHAT_CONFIG_DIR: configDir,
            CHAT_NATS_USER: "chat",
            CHAT_NATS_PASSWORD: "nats-secret-123",
          },
        });
        const health = await (await fetch(`${server.httpUrl}/healthz`)).json();
        assertEquals(health.status, "ok");
        await server.kill();
      } finally {
        await nats.dispose();
        await Deno.remove(configDir, { recursive: true });
      }
    });

    await t.step({
      name: "NATS over tls://: served, with the certificate trusted through DENO_CERT",
      ignore: !opensslAvailable(),
      fn: async () => {
        const dir = await Deno.makeTempDir({ prefix: "chat-nats-tls-" });
        const tls = await selfSignedCertificate(dir);
        const nats = await startNats({ tls });
        const configDir = await testConfigDir({
          server: `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    start_timeout: 5\n`,
        });
        try {
          assertMatch(nats.url, /^tls:\/\/127\.0\.0\.1:\d+$/);
          const untrusted = await run([], { CHAT_CONFIG_DIR: configDir });
          assertEquals(untrusted.code, 2, untrusted.lines.join("\n"));
          assertMatch(
            untrusted.lines[untrusted.lines.length - 1],
            /^Cannot start server as NATS at tls:\S+ presented a certificate that could not be verified \(.*UnknownIssuer.*\): if a private authority signed it, set DENO_CERT to that authority's PEM file; else fix the host name in "cluster\.nats\.servers" in .*server\.yaml$/,
          );
          const server = await startServerProcess({
            env: { CHAT_CONFIG_DIR: configDir, DENO_CERT: tls.certFile },
          });
          const health = await (await fetch(`${server.httpUrl}/healthz`)).json();
          assertEquals(health.status, "ok");
          await server.kill();
        } finally {
          await nats.dispose();
          await Deno.remove(configDir, { recursive: true });
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  },
});

/** Kills every process whose command line mentions `marker` (what `deno task` left behind). */
async function killMarked(marker: string): Promise<void> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.includes(marker)) {
      try {
        Deno.kill(Number(entry.name), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
}

Deno.test("deno task dev stops on SIGTERM", async () => {
  // A config folder of its own marks the watcher's command line, for the cleanup.
  const configDir = await testConfigDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "dev", "--config-dir", configDir],
    cwd: ROOT,
    env: { NO_COLOR: "1", CHAT_ENV: "test", CHAT_PORT: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  let heard: () => void = () => {};
  const listening = new Promise<void>((resolve) => heard = resolve);
  const collect = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      if (output.includes("listening on")) heard();
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  try {
    await within(listening, "the dev server to listen", 20_000);
    child.kill("SIGTERM");
    const status = await within(child.status, "deno task dev to stop", 5000);
    assertEquals(status.code === 0 || status.signal === "SIGTERM" || status.code === 143, true);
    await within(drained, "the watcher to be gone too", 5000);
  } finally {
    await killMarked(configDir);
    await child.status;
    await drained;
    await Deno.remove(configDir, { recursive: true });
  }
});
