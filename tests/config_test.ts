import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { ConfigError, DEFAULT_CONFIG_DIR, loadConfig } from "../src/config/mod.ts";
import { createCatalog } from "../src/messages.ts";

const noEnv = () => undefined;

/** A config directory with one environment, `custom`, holding these two files. */
async function withConfig(
  files: { server?: string; chat?: string },
  run: (configDir: string, dir: (file: string) => string) => Promise<void>,
): Promise<void> {
  const configDir = await Deno.makeTempDir({ prefix: "chat-config-" });
  try {
    await Deno.mkdir(join(configDir, "custom"));
    const shipped = (file: string) => Deno.readTextFile(join(DEFAULT_CONFIG_DIR, "test", file));
    await Deno.writeTextFile(
      join(configDir, "custom", "server.yaml"),
      files.server ?? await shipped("server.yaml"),
    );
    await Deno.writeTextFile(
      join(configDir, "custom", "chat.yaml"),
      files.chat ?? await shipped("chat.yaml"),
    );
    await run(configDir, (file) => join(configDir, "custom", file));
  } finally {
    await Deno.remove(configDir, { recursive: true });
  }
}

async function configError(files: { server?: string; chat?: string }): Promise<string> {
  let message = "";
  await withConfig(files, async (configDir) => {
    const error = await assertRejects(
      () => loadConfig({ flags: { env: "custom", configDir }, getEnv: noEnv }),
      ConfigError,
    );
    message = error.message;
  });
  return message;
}

Deno.test("shipped environments load", async (t) => {
  for (
    const [env, environment, host] of [
      ["local", "LOCAL", "127.0.0.1"],
      ["prod", "PROD", "0.0.0.0"],
      ["test", "TEST", "127.0.0.1"],
    ]
  ) {
    await t.step(env, async () => {
      const config = await loadConfig({ flags: { env }, getEnv: noEnv });
      assertEquals(config.env, env);
      assertEquals(config.chat.environment, environment);
      assertEquals(config.chat.maxMessageLen, 1000);
      assertEquals(config.server.host, host);
      assertEquals(
        config.chat.messages.welcome,
        'Welcome, $name (hint: type "!help" for help)',
      );
    });
  }
});

Deno.test("environment selection and overrides", async (t) => {
  await t.step("defaults to local", async () => {
    assertEquals((await loadConfig({ getEnv: noEnv })).env, "local");
  });

  await t.step("CHAT_ENV, CHAT_HOST, CHAT_PORT and LOG_LEVEL override the file", async () => {
    const env: Record<string, string> = {
      CHAT_ENV: "prod",
      CHAT_HOST: "127.0.0.2",
      CHAT_PORT: "9000",
      LOG_LEVEL: "debug",
    };
    const config = await loadConfig({ getEnv: (name) => env[name] });
    assertEquals(config.env, "prod");
    assertEquals(config.server.host, "127.0.0.2");
    assertEquals(config.server.port, 9000);
    assertEquals(config.server.log, { level: "debug", format: "json" });
  });

  await t.step(
    "hosts and origins come from the environment, checked as the file's are",
    async () => {
      const load = (env: Record<string, string>) => loadConfig({ getEnv: (name) => env[name] });
      const { limits } = (await load({
        CHAT_ALLOWED_HOSTS: "chat.mine.test, [::1]:8080",
        CHAT_ALLOWED_ORIGINS: "https://chat.mine.test",
        CHAT_TRUSTED_PROXIES: "10.0.0.1",
      })).server;
      assertEquals(
        [limits.allowedHosts, limits.allowedOrigins, limits.trustedProxies],
        [["chat.mine.test", "[::1]:8080"], ["https://chat.mine.test"], ["10.0.0.1"]],
      );
      const cases: [Record<string, string>, string][] = [
        [
          { CHAT_ALLOWED_HOSTS: "" },
          'Cannot start server as CHAT_ALLOWED_HOSTS must list at least one item: "*" or host names such as "chat.example.org"',
        ],
        [
          { CHAT_ALLOWED_HOSTS: "https://chat.mine.test" },
          'Cannot start server as CHAT_ALLOWED_HOSTS must hold "*" or host names such as "chat.example.org": current value is "https://chat.mine.test"',
        ],
        [
          { CHAT_ALLOWED_ORIGINS: "chat.mine.test" },
          'Cannot start server as CHAT_ALLOWED_ORIGINS must hold "*" or origins such as "https://chat.example.org": current value is "chat.mine.test"',
        ],
      ];
      for (const [env, message] of cases) {
        await assertRejects(() => load(env), ConfigError, message);
      }
    },
  );

  await t.step("CHAT_NATS_SERVERS turns the cluster on with default timings", async () => {
    const env: Record<string, string> = {
      CHAT_NATS_SERVERS: "tls://127.0.0.1:4222, tls://127.0.0.1:4223",
    };
    const config = await loadConfig({ getEnv: (name) => env[name] });
    assertEquals(config.server.cluster, {
      servers: ["tls://127.0.0.1:4222", "tls://127.0.0.1:4223"],
      nameTtl: 15,
      heartbeat: 5,
      maxOutbox: 10_000,
      keptPerRoom: 1000,
      startTimeout: 60,
      credentials: undefined,
      requireAuth: false,
      authSource:
        `the "local" environment (${DEFAULT_CONFIG_DIR}/local/server.yaml does not set "cluster.nats.auth")`,
    });
  });

  await t.step("prod requires a NATS login unless CHAT_NATS_AUTH says otherwise", async () => {
    const cases: [Record<string, string>, boolean, string][] = [
      [{}, true, `the "prod" environment (`],
      [{ CHAT_NATS_AUTH: "optional" }, false, "CHAT_NATS_AUTH"],
      [{ CHAT_ENV: "local", CHAT_NATS_AUTH: "required" }, true, "CHAT_NATS_AUTH"],
    ];
    for (const [more, requireAuth, source] of cases) {
      const env: Record<string, string> = {
        CHAT_ENV: "prod",
        CHAT_NATS_SERVERS: "nats://127.0.0.1:4222",
        ...more,
      };
      const cluster = (await loadConfig({ getEnv: (name) => env[name] })).server.cluster;
      assertEquals(cluster?.requireAuth, requireAuth, JSON.stringify(more));
      assertEquals(cluster?.authSource.startsWith(source), true, cluster?.authSource);
    }
    const env: Record<string, string> = {
      CHAT_NATS_SERVERS: "nats://127.0.0.1:4222",
      CHAT_NATS_AUTH: "sometimes",
    };
    await assertRejects(
      () => loadConfig({ getEnv: (name) => env[name] }),
      ConfigError,
      'CHAT_NATS_AUTH must be one of required, optional: current value is "sometimes"',
    );
  });

  await t.step("CHAT_NATS_SERVERS reaching NATS two ways is named in the error", async () => {
    const env: Record<string, string> = {
      CHAT_NATS_SERVERS: "nats://127.0.0.1:4222,wss://nats.example:443",
    };
    const error = await assertRejects(
      () => loadConfig({ getEnv: (name) => env[name] }),
      ConfigError,
    );
    assertStringIncludes(
      error.message,
      "Cannot start server as CHAT_NATS_SERVERS must reach every NATS server the same way",
    );
  });

  await t.step("flags win over environment variables", async () => {
    const env: Record<string, string> = { CHAT_ENV: "prod", CHAT_PORT: "9000" };
    const config = await loadConfig({
      flags: { env: "test", port: "0", host: "localhost" },
      getEnv: (name) => env[name],
    });
    assertEquals([config.env, config.server.host, config.server.port], ["test", "localhost", 0]);
  });

  await t.step("absent keys take their defaults", async () => {
    await withConfig({ server: "# nothing set\n" }, async (configDir) => {
      const config = await loadConfig({ flags: { env: "custom", configDir }, getEnv: noEnv });
      assertEquals(config.server, {
        host: "127.0.0.1",
        port: 8080,
        log: { level: "info", format: "text" },
        limits: {
          maxConnections: 10_000,
          maxConnectionsPerIp: 50,
          maxFrameBytes: 65_536,
          maxInboundBytesPerSecond: 131_072,
          maxBufferedBytes: 1_048_576,
          idleTimeout: 30,
          allowedOrigins: ["*"],
          allowedHosts: ["*"],
          trustedProxies: [],
          connectRate: 10,
          connectBurst: 20,
          frameAncestors: [],
        },
        history: { store: "memory", path: "data/history.kv" },
        cluster: undefined,
        tls: undefined,
        auth: {
          mode: "open",
          algorithm: "HS256",
          secret: undefined,
          publicKeyFile: undefined,
          nameClaim: "sub",
          rolesClaim: "roles",
          issuer: undefined,
          audience: undefined,
          expiryWarning: 60,
          maxTokenLifetime: 86_400,
          maxDevices: 5,
          operatorPassword: undefined,
        },
        apiKeys: [],
      });
    });
  });
});

Deno.test("config errors name the file, the key and the fix", async (t) => {
  await t.step("a missing environment", async () => {
    const error = await assertRejects(
      () => loadConfig({ flags: { env: "staging" }, getEnv: noEnv }),
      ConfigError,
    );
    assertEquals(
      error.message,
      `Cannot start server as config file ${
        join(DEFAULT_CONFIG_DIR, "staging", "server.yaml")
      } does not exist: create it or choose another --env`,
    );
  });

  await t.step("an environment name that is not a folder name", async () => {
    const error = await assertRejects(
      () => loadConfig({ flags: { env: "../etc" }, getEnv: noEnv }),
      ConfigError,
    );
    assertEquals(
      error.message,
      'Cannot start server as --env must be a folder name of lowercase letters, digits, "-" and "_": current value is "../etc"',
    );
  });

  const cases: [string, { server?: string; chat?: string }, string, string][] = [
    [
      "bad YAML",
      { server: "port: [8080\n" },
      "server.yaml",
      "is not valid YAML: Cannot read flow collection: unexpected end of the stream within a flow collection at line 2, column 1:",
    ],
    [
      "a wrong type",
      { server: "port: eighty\n" },
      "server.yaml",
      'must be an integer from 0 to 65535: current value is "eighty"',
    ],
    [
      "an out-of-range value",
      { server: "port: 70000\n" },
      "server.yaml",
      "must be an integer from 0 to 65535: current value is 70000",
    ],
    [
      "an unknown key",
      { server: "prot: 8080\n" },
      "server.yaml",
      "is not a known key: remove it or use one of host, port, log, limits, history, cluster",
    ],
    [
      "a nested unknown key",
      { server: "log:\n  colour: red\n" },
      "server.yaml",
      "is not a known key: remove it or use one of level, format",
    ],
    [
      "a bad choice",
      { server: "log:\n  format: xml\n" },
      "server.yaml",
      'must be one of text, json: current value is "xml"',
    ],
    [
      "a cluster without servers",
      { server: "cluster:\n  nats:\n    servers: []\n" },
      "server.yaml",
      '"cluster.nats.servers" in',
    ],
    [
      "a cluster server that is not a NATS URL",
      { server: "cluster:\n  nats:\n    servers: [http://127.0.0.1:4222]\n" },
      "server.yaml",
      'must hold nats://, tls://, ws:// or wss:// URLs of NATS servers: current value is "http://127.0.0.1:4222"',
    ],
    [
      "cluster servers reached two ways",
      {
        server: "cluster:\n  nats:\n    servers: [nats://10.0.0.1:4222, ws://10.0.0.2:8222]\n",
      },
      '"cluster.nats.servers" in',
      'must reach every NATS server the same way, all nats://, all tls://, or all ws:// and wss://: current value is ["nats://10.0.0.1:4222","ws://10.0.0.2:8222"]',
    ],
    [
      "cluster servers with and without TLS",
      { server: "cluster:\n  nats:\n    servers: [tls://10.0.0.1:4222, nats://10.0.0.2:4222]\n" },
      '"cluster.nats.servers" in',
      'must reach every NATS server the same way, all nats://, all tls://, or all ws:// and wss://: current value is ["tls://10.0.0.1:4222","nats://10.0.0.2:4222"]',
    ],
    [
      "a heartbeat too slow for the name TTL",
      {
        server:
          "cluster:\n  nats:\n    servers: [ws://127.0.0.1:8222]\n    name_ttl: 4\n    heartbeat: 3\n",
      },
      "server.yaml",
      "must be at most 1.5 (half of name_ttl, 4, less the lease's margin, 1)",
    ],
    [
      "a file that is not a mapping",
      { chat: "- a\n- b\n" },
      "chat.yaml",
      "must be a mapping of keys to values: current value is a list",
    ],
    [
      "a missing required key",
      { chat: "max_message_len: 10\nmessages: {}\n" },
      "chat.yaml",
      "is required but missing",
    ],
    [
      "an unknown template placeholder",
      {
        chat: (await Deno.readTextFile(join(DEFAULT_CONFIG_DIR, "test", "chat.yaml"))).replace(
          "$name has connected!",
          "$nmae has connected!",
        ),
      },
      "chat.yaml",
      'uses the unknown placeholder "$nmae" (allowed are $name; write $$ for a dollar sign)',
    ],
  ];
  for (const [what, files, file, problem] of cases) {
    await t.step(what, async () => {
      const message = await configError(files);
      assertStringIncludes(message, "Cannot start server as ");
      assertStringIncludes(message, file);
      assertStringIncludes(message, problem);
    });
  }

  await t.step("the message names the key with its full path", async () => {
    const message = await configError({ server: "log:\n  level: loud\n" });
    assertStringIncludes(message, '"log.level" in ');
    assertStringIncludes(
      message,
      'must be one of trace, debug, info, warning, error, fatal: current value is "loud"',
    );
  });

  await t.step("a bad CHAT_PORT or --port", async () => {
    for (
      const [flags, env, source] of [
        [{ port: "eighty" }, {}, "--port"],
        [{}, { CHAT_PORT: "-1" }, "CHAT_PORT"],
      ] as const
    ) {
      const error = await assertRejects(
        () => loadConfig({ flags, getEnv: (name) => (env as Record<string, string>)[name] }),
        ConfigError,
      );
      assertStringIncludes(error.message, `Cannot start server as ${source} must be an integer`);
    }
  });

  await t.step("a bad LOG_LEVEL", async () => {
    const error = await assertRejects(
      () => loadConfig({ getEnv: (name) => name === "LOG_LEVEL" ? "verbose" : undefined }),
      ConfigError,
    );
    assertStringIncludes(error.message, "LOG_LEVEL must be one of trace, debug");
  });
});

Deno.test("weak secrets stop the start, naming the variable and the fix", async (t) => {
  const load = (env: Record<string, string>) =>
    loadConfig({ flags: { env: "test" }, getEnv: (name) => env[name] });
  const refused = async (env: Record<string, string>) =>
    (await assertRejects(() => load(env), ConfigError)).message;
  const FIX = 'such as the output of "openssl rand -hex 16"';

  const cases: [string, Record<string, string>, string][] = [
    ...["abcdefghabcdefgh", "password12345678", "Password98765432"].map((
      password,
    ): [string, Record<string, string>, string] => [
      `an operator password of common words and runs: ${password}`,
      { CHAT_OPERATOR_PASSWORD: password },
      `Cannot start server as CHAT_OPERATOR_PASSWORD must be at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: current value has mostly common words or runs such as abcd or 1234`,
    ]),
    [
      "an operator password of one character repeated",
      { CHAT_OPERATOR_PASSWORD: "aaaaaaaaaaaaaaaa" },
      `Cannot start server as CHAT_OPERATOR_PASSWORD must be at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: current value has only 1 different character`,
    ],
    [
      "a short operator password",
      { CHAT_OPERATOR_PASSWORD: "hunter2" },
      `Cannot start server as CHAT_OPERATOR_PASSWORD must be at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: current value has 7 characters`,
    ],
    [
      "an operator password of few characters",
      { CHAT_OPERATOR_PASSWORD: "abcabcabcabcabcabc" },
      `Cannot start server as CHAT_OPERATOR_PASSWORD must be at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: current value has only 3 different characters`,
    ],
    [
      "an API key of one character repeated",
      { CHAT_API_KEYS: "7f3a9c21d4e8b605aa17,aaaaaaaaaaaaaaaa" },
      `Cannot start server as CHAT_API_KEYS must hold comma-separated keys of at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: key 2 has only 1 different character`,
    ],
    [
      "a short API key",
      { CHAT_API_KEYS: "short" },
      `Cannot start server as CHAT_API_KEYS must hold comma-separated keys of at least 16 characters with at least 8 different ones, not mostly common words or runs, ${FIX}: key 1 has 5 characters`,
    ],
    [
      "an HS256 secret of one character repeated",
      { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: "x".repeat(40) },
      'Cannot start server as CHAT_AUTH_SECRET must be at least 32 characters with at least 8 different ones, not mostly common words or runs for HS256, such as the output of "openssl rand -hex 32": current value has only 1 different character',
    ],
  ];
  for (const [what, env, message] of cases) {
    await t.step(what, async () => assertEquals(await refused(env), message));
  }

  await t.step("the output of openssl rand -hex 16 passes, as does a passphrase", async () => {
    const hex = "3f9c0a7be14d25c8960fb3e7a1d45c02";
    const phrase = "correct horse battery staple";
    const config = await load({ CHAT_OPERATOR_PASSWORD: phrase, CHAT_API_KEYS: hex });
    assertEquals([config.server.auth.operatorPassword, config.server.apiKeys], [phrase, [hex]]);
  });
});

Deno.test("auth.max_token_lifetime: a day unless set", async (t) => {
  await t.step("the default", async () => {
    const config = await loadConfig({ flags: { env: "test" }, getEnv: noEnv });
    assertEquals(config.server.auth.maxTokenLifetime, 86_400);
  });
  await t.step("set in server.yaml", async () => {
    await withConfig({ server: "auth:\n  max_token_lifetime: 3600\n" }, async (configDir) => {
      const config = await loadConfig({ flags: { env: "custom", configDir }, getEnv: noEnv });
      assertEquals(config.server.auth.maxTokenLifetime, 3600);
    });
  });
  await t.step("out of range", async () => {
    const message = await configError({ server: "auth:\n  max_token_lifetime: 0\n" });
    assertStringIncludes(message, '"auth.max_token_lifetime" in ');
    assertStringIncludes(message, "must be an integer from 1 to 31536000: current value is 0");
  });
});

Deno.test("limits.frame_ancestors: the origins whose pages may frame the chat", async (t) => {
  await t.step("listed origins", async () => {
    const server =
      "limits:\n  frame_ancestors: [https://app.example, 'https://*.example.org:8443']\n";
    await withConfig({ server }, async (configDir) => {
      const config = await loadConfig({ flags: { env: "custom", configDir }, getEnv: noEnv });
      assertEquals(config.server.limits.frameAncestors, [
        "https://app.example",
        "https://*.example.org:8443",
      ]);
    });
  });
  await t.step("anything else is refused, so it cannot change the policy", async () => {
    const message = await configError({
      server: "limits:\n  frame_ancestors: ['https://app.example; script-src *']\n",
    });
    assertStringIncludes(message, '"limits.frame_ancestors" in ');
    assertStringIncludes(
      message,
      'must hold origins such as https://app.example: current value is "https://app.example; script-src *"',
    );
  });
});

Deno.test("a catalog fills placeholders and keeps $$ as a dollar sign", async () => {
  const { chat } = await loadConfig({ flags: { env: "test" }, getEnv: noEnv });
  const catalog = createCatalog({ ...chat.messages, pm_sent: "PM -> $to: $message ($$5)$$" });
  assertEquals(
    catalog.render("pm_sent", { to: "Bob", message: "$name stays" }),
    "PM -> Bob: $name stays ($5)$",
  );
  assertEquals(catalog.render("pong", {}), "pong!");
});

Deno.test("a config error stops the server with exit code 2 and one clear line", async () => {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-env",
      "--allow-net",
      "src/main.ts",
      "--port",
      "eighty",
    ],
    cwd: join(DEFAULT_CONFIG_DIR, ".."),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  assertEquals(code, 2);
  assertEquals(new TextDecoder().decode(stdout), "");
  assertEquals(
    new TextDecoder().decode(stderr),
    'Cannot start server as --port must be an integer from 0 to 65535: current value is "eighty"\n',
  );
});
