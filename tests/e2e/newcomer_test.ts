/**
 * What a newcomer and a deployer run from the README, run as they would:
 * the bench's usage, a development token that the server accepts, TLS with
 * the README's certificate command (and the CA certificate OpenSSL makes
 * without it), and the start's listening line.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { fromFileUrl, join } from "@std/path";
import { rawUpgrade, TestClient } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { startServerProcess } from "./_process.ts";
import { opensslAvailable } from "./_tls.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const SECRET = "a-development-secret-of-forty-characters-";

/** Runs `deno <args>` in the project, as a task would, and returns its exit code and output. */
async function deno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", CHAT_ENV: "test", ...env },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("deno task bench --help prints its usage and runs nothing", async () => {
  const help = await deno(["run", "--allow-all", "bench/run.ts", "--help"]);
  assertEquals(help.code, 0);
  assertMatch(help.stdout, /^Usage: deno task bench \[options\]/);
  assertMatch(help.stdout, /--no-peers/);
  const unknown = await deno(["run", "--allow-all", "bench/run.ts", "--fast"]);
  assertEquals(unknown.code, 2);
  assertMatch(unknown.stderr, /^Unknown option --fast\n\nUsage: deno task bench/);
  const wrong = await deno(["run", "--allow-all", "bench/run.ts", "--runs", "many"]);
  assertEquals([wrong.code, wrong.stderr.trim()], [
    2,
    "--runs must be a whole number from 1: many",
  ]);
});

Deno.test("deno task token mints a token the server accepts", async () => {
  const env = { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: SECRET };
  const minted = await deno([
    "run",
    "--allow-read",
    "--allow-env",
    "scripts/token.ts",
    "--sub",
    "Ann",
    "--role",
    "moderator",
    "--ttl",
    "10m",
  ], env);
  assertEquals(minted.code, 0, minted.stderr);
  const token = minted.stdout.trim();
  const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  assertEquals([claims.sub, claims.roles, claims.exp - claims.iat], ["Ann", ["moderator"], 600]);
  const server = await startServerProcess({ env });
  try {
    const url = `${server.httpUrl.replace("http", "ws")}/ws?token=${token}`;
    const ann = await TestClient.connect(url);
    assertMatch((await ann.next()).body, /^Welcome, Ann /);
    // A moderator's command works: the role came through.
    ann.send("!topic Deploys today");
    assertEquals(await ann.nextPair(), ["SERVER", "Ann set the topic of lobby: Deploys today"]);
    await ann.close();
  } finally {
    await server.kill();
  }
  const missing = await deno(["run", "--allow-read", "--allow-env", "scripts/token.ts"], env);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /^--sub NAME is required/);
});

Deno.test("the listening line reads the same in the text and the JSON log", async () => {
  const configDir = await testConfigDir();
  const serverYaml = join(configDir, "test", "server.yaml");
  const yaml = await Deno.readTextFile(serverYaml);
  await Deno.writeTextFile(serverYaml, yaml.replace(/^ {2}format: text$/m, "  format: json"));
  const server = await startServerProcess({ env: { CHAT_CONFIG_DIR: configDir } });
  try {
    const line = server.output.find((line) => line.includes("listening on"));
    const record = JSON.parse(line ?? "{}");
    assertEquals(record.message, `listening on ${server.httpUrl} (environment test)`);
    assertEquals(record.properties?.url, server.httpUrl);
  } finally {
    await server.kill();
    await Deno.remove(configDir, { recursive: true });
  }
});

Deno.test({
  name: "TLS with the README's certificate, and with the CA one OpenSSL makes without it",
  ignore: !opensslAvailable(),
  fn: async (t) => {
    const readme = await Deno.readTextFile(join(ROOT, "README.md"));
    const command = /^openssl req -x509 .*$/m.exec(readme)?.[0];
    if (command === undefined) throw new Error("the README gives no openssl command");
    const dir = await Deno.makeTempDir({ prefix: "chat-tls-" });
    /** Makes a certificate in `dir` with `command`, as a shell would run it. */
    const make = async (line: string) => {
      const { success, stderr } = await new Deno.Command("sh", {
        args: ["-c", line],
        cwd: dir,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert(success, new TextDecoder().decode(stderr));
      return { CHAT_TLS_CERT_FILE: join(dir, "cert.pem"), CHAT_TLS_KEY_FILE: join(dir, "key.pem") };
    };
    /** Starts a server with `tls`, and runs `--healthcheck` against it. */
    const startAndProbe = async (tls: Record<string, string>) => {
      const server = await startServerProcess({ env: tls });
      try {
        const port = new URL(server.httpUrl).port;
        const probe = await deno([
          "run",
          "--allow-net",
          "--allow-read",
          "--allow-env",
          "--unstable-kv",
          "src/main.ts",
          "--healthcheck",
        ], { ...tls, CHAT_PORT: port });
        return { probe, output: server.output.join("\n"), url: server.httpUrl };
      } finally {
        await server.kill();
      }
    };
    try {
      await t.step("the README's command makes a certificate the health check trusts", async () => {
        const { probe, output, url } = await startAndProbe(await make(command));
        assertEquals([probe.code, probe.stderr], [0, ""]);
        assert(url.startsWith("https://"), url);
        assert(!output.includes("CA certificate"), output);
      });
      await t.step(
        "a CA certificate: one warning at start, and the health check says why",
        async () => {
          const withoutCaFalse = command.replace(" -addext basicConstraints=critical,CA:FALSE", "");
          assert(withoutCaFalse !== command);
          const { probe, output } = await startAndProbe(await make(withoutCaFalse));
          assertEquals(output.match(/is a CA certificate \(CA:TRUE\)/g)?.length, 1, output);
          // As much as can be told without TLS: the port answers, and the line says why.
          assertEquals(probe.code, 0);
          assertMatch(
            probe.stderr.trim(),
            /^Healthy as far as can be told: https:\/\/127\.0\.0\.1:\d+\/healthz accepts connections, but cannot be read, as the server's certificate is a CA certificate \(CA:TRUE\)/,
          );
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The status of a GET of `/` with `Host: host`, sent by hand (fetch sets its own Host). */
async function statusFor(port: number, host: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const head = new Uint8Array(64);
    const read = await conn.read(head);
    return Number(
      /^HTTP\/1\.1 (\d{3})/.exec(new TextDecoder().decode(head.subarray(0, read ?? 0)))?.[1],
    );
  } finally {
    conn.close();
  }
}

Deno.test("prod takes its hosts and origins from the environment, and says when it has none", async (t) => {
  // The shipped prod environment, with its history in memory so the test writes no file.
  const configDir = await Deno.makeTempDir({ prefix: "chat-prod-" });
  await Deno.mkdir(join(configDir, "prod"));
  for (const file of ["server.yaml", "chat.yaml"]) {
    const text = await Deno.readTextFile(join(ROOT, "config", "prod", file));
    await Deno.writeTextFile(
      join(configDir, "prod", file),
      text.replace("store: kv", "store: memory"),
    );
  }
  const prod = { CHAT_ENV: "prod", CHAT_CONFIG_DIR: configDir, CHAT_HOST: "127.0.0.1" };
  try {
    await t.step("with the placeholder hosts: one warning naming the variable", async () => {
      const server = await startServerProcess({ env: prod });
      try {
        const port = Number(new URL(server.httpUrl).port);
        assertEquals(await statusFor(port, "chat.mine.test"), 421);
        const warnings = server.output.filter((line) => line.includes("CHAT_ALLOWED_HOSTS"));
        assertEquals(warnings.length, 1, server.output.join("\n"));
        assertMatch(
          warnings[0],
          /lists only the placeholder chat\.example\.com: requests for any other name are answered 421/,
        );
      } finally {
        await server.kill();
      }
    });
    await t.step(
      "CHAT_ALLOWED_HOSTS and CHAT_ALLOWED_ORIGINS are the names it answers",
      async () => {
        const server = await startServerProcess({
          env: {
            ...prod,
            CHAT_ALLOWED_HOSTS: "chat.mine.test, other.mine.test",
            CHAT_ALLOWED_ORIGINS: "https://chat.mine.test",
          },
        });
        try {
          const port = Number(new URL(server.httpUrl).port);
          assertEquals(
            await Promise.all(
              ["chat.mine.test", "other.mine.test", "chat.example.com"].map((host) =>
                statusFor(port, host)
              ),
            ),
            [200, 200, 421],
          );
          assert(
            !server.output.some((line) => line.includes("placeholder")),
            server.output.join("\n"),
          );
          const upgrade = async (origin: string) => {
            const answer = await rawUpgrade(port, {
              headers: { Host: "chat.mine.test", Origin: origin },
            });
            answer.conn.close();
            return answer.status;
          };
          assertEquals([
            await upgrade("https://chat.mine.test"),
            await upgrade("https://evil.test"),
          ], [101, 403]);
        } finally {
          await server.kill();
        }
      },
    );
  } finally {
    await Deno.remove(configDir, { recursive: true });
  }
});
