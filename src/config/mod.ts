/**
 * Configuration: the only module that reads config files and environment
 * variables. Each environment has a folder `config/<env>/` with two YAML
 * files, `server.yaml` (network, logging, limits) and `chat.yaml` (what users
 * see). Flags win over environment variables, which win over the files; all
 * three are checked by the same schema, so an error names where the value
 * came from.
 *
 * @module
 */

import { fromFileUrl, join } from "@std/path";
import { MESSAGE_CATALOG, type MessageKey } from "../messages.ts";
import {
  type Field,
  integer,
  number,
  object,
  oneOf,
  optional,
  SchemaError,
  showValue,
  string,
  stringList,
  template,
} from "./_schema.ts";
import { normalizeAddress } from "../net/ip.ts";
import { type Config, LOG_LEVELS, TOKEN_ALGORITHMS } from "./types.ts";
import { ConfigError, fail } from "./_errors.ts";
import { readSecrets } from "./_secrets.ts";
import { readYamlFile, setKey } from "./_yaml.ts";

/**
 * Seconds before `name_ttl` runs out that an instance lets a name go when it
 * could not renew it (a second, or a quarter of `name_ttl` when shorter):
 * so it does before the others could take the instance for gone.
 */
export function nameLeaseMargin(nameTtl: number): number {
  return Math.min(1, nameTtl / 4);
}

export type {
  AuthConfig,
  ChatConfig,
  ClusterConfig,
  Config,
  ConnectionLimits,
  FloodLimits,
  LogLevelName,
  ServerConfig,
  TlsConfig,
  TokenAlgorithm,
} from "./types.ts";
export { LOG_LEVELS, TOKEN_ALGORITHMS } from "./types.ts";
export { ConfigError };

const KIB = 1024;
const MIB = 1024 * KIB;

/** `*`, or a host name or address with an optional port: what a `Host` header holds. */
const HOST = /^(\*|[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/;
/** `*`, or a scheme, a host and an optional port: what an `Origin` header holds. */
const ORIGIN = /^(\*|[a-z][a-z0-9+.-]*:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?)$/;

const serverSchema = object({
  host: string("127.0.0.1", { nonEmpty: true }),
  port: integer(8080, { min: 0, max: 65535 }),
  log: object({
    level: oneOf(LOG_LEVELS, "info"),
    format: oneOf(["text", "json"], "text"),
  }),
  limits: object({
    max_connections: integer(10_000, { min: 1, max: 1_000_000 }),
    max_connections_per_ip: integer(50, { min: 1, max: 1_000_000 }),
    max_frame_bytes: integer(64 * KIB, { min: 1 * KIB, max: 64 * MIB }),
    max_buffered_bytes: integer(1 * MIB, { min: 1 * KIB, max: 1024 * MIB }),
    max_inbound_bytes_per_s: integer(128 * KIB, { min: 1 * KIB, max: 1024 * MIB }),
    idle_timeout: integer(30, { min: 0, max: 3600 }),
    allowed_origins: stringList(["*"], {
      nonEmpty: true,
      item: { pattern: ORIGIN, expected: '"*" or origins such as "https://chat.example.org"' },
    }),
    allowed_hosts: stringList(["*"], {
      nonEmpty: true,
      item: { pattern: HOST, expected: '"*" or host names such as "chat.example.org"' },
    }),
    trusted_proxies: stringList([]),
    connect_rate: number(10, { min: 0.01, max: 100_000 }),
    connect_burst: integer(20, { min: 1, max: 100_000 }),
    frame_ancestors: stringList([], {
      item: {
        // Nothing that could end the directive or start another.
        pattern: /^https?:\/\/[A-Za-z0-9*.\-]+(:\d+)?$/,
        expected: "origins such as https://app.example",
      },
    }),
  }),
  history: object({
    store: oneOf(["memory", "kv"], "memory"),
    path: string("data/history.kv", { nonEmpty: true }),
  }),
  cluster: optional(object({
    nats: object({
      servers: stringList(undefined, {
        nonEmpty: true,
        item: {
          pattern: /^(nats|tls|wss?):\/\/./,
          expected: "nats://, tls://, ws:// or wss:// URLs of NATS servers",
        },
      }),
      name_ttl: number(15, { min: 1, max: 3600 }),
      heartbeat: number(5, { min: 0.1, max: 600 }),
      max_outbox: integer(10_000, { min: 1, max: 1_000_000 }),
      kept_per_room: integer(1000, { min: 1, max: 1_000_000 }),
      start_timeout: number(60, { min: 0, max: 3600 }),
      // Unset: required in the prod environment, optional elsewhere.
      auth: optional(oneOf(["required", "optional"])),
    }),
  })),
  tls: optional(object({
    cert_file: string(undefined, { nonEmpty: true }),
    key_file: string(undefined, { nonEmpty: true }),
  })),
  auth: object({
    mode: oneOf(["open", "token"], "open"),
    algorithm: oneOf(TOKEN_ALGORITHMS, "HS256"),
    public_key_file: optional(string(undefined, { nonEmpty: true })),
    name_claim: string("sub", { nonEmpty: true }),
    roles_claim: string("roles", { nonEmpty: true }),
    issuer: optional(string(undefined, { nonEmpty: true })),
    audience: optional(string(undefined, { nonEmpty: true })),
    expiry_warning: number(60, { min: 0, max: 86_400 }),
    max_token_lifetime: integer(86_400, { min: 1, max: 31_536_000 }),
    max_devices: integer(5, { min: 1, max: 100 }),
  }),
});

const messageFields = Object.fromEntries(
  Object.entries(MESSAGE_CATALOG).map((
    [key, { placeholders, text }],
  ) => [key, template(placeholders, text)]),
) as { [K in MessageKey]: Field<string> };

const chatSchema = object({
  environment: string(undefined, { nonEmpty: true }),
  max_message_len: integer(1000, { min: 1, max: 1_000_000 }),
  reserved_names: stringList(["server", "system", "admin", "root", "moderator"]),
  presence_notice_max_members: integer(200, { min: 0, max: 1_000_000 }),
  history_size: integer(100, { min: 0, max: 100_000 }),
  pm_history_size: integer(100, { min: 0, max: 100_000 }),
  room_idle_ttl: number(3600, { min: 0, max: 31_536_000 }),
  max_rooms: integer(1000, { min: 1, max: 1_000_000 }),
  flood: object({
    rate: number(5, { min: 0.01, max: 100_000 }),
    burst: integer(10, { min: 1, max: 100_000 }),
    disconnect_after: number(10, { min: 0.1, max: 86_400 }),
    address_rate: number(20, { min: 0.01, max: 100_000 }),
    address_burst: integer(40, { min: 1, max: 100_000 }),
    room_rate: number(30, { min: 0.01, max: 1_000_000 }),
    room_burst: integer(60, { min: 1, max: 1_000_000 }),
    server_rate: number(500, { min: 0.01, max: 1_000_000 }),
    server_burst: integer(1000, { min: 1, max: 1_000_000 }),
  }),
  unused_room_ttl: number(60, { min: 0, max: 31_536_000 }),
  room_create_rate: number(0.1, { min: 0.001, max: 100_000 }),
  room_create_burst: integer(5, { min: 1, max: 100_000 }),
  server_room_create_rate: number(1, { min: 0.001, max: 100_000 }),
  server_room_create_burst: integer(30, { min: 1, max: 100_000 }),
  presence_rate: number(2, { min: 0.01, max: 100_000 }),
  presence_burst: integer(10, { min: 1, max: 100_000 }),
  session_linger: number(60, { min: 0, max: 86_400 }),
  session_buffer: integer(100, { min: 0, max: 10_000 }),
  edit_window: number(900, { min: 0, max: 604_800 }),
  messages: object(messageFields),
});

/** Settings given on the command line; each wins over the files. */
export interface ConfigFlags {
  env?: string;
  host?: string;
  port?: string;
  configDir?: string;
}

/** Where {@linkcode loadConfig} looks. */
export interface LoadConfigOptions {
  /** Command-line settings. */
  flags?: ConfigFlags;
  /** Reads an environment variable; defaults to `Deno.env.get`. */
  getEnv?: (name: string) => string | undefined;
}

/** A key of `server.yaml` that a flag or an environment variable may set. */
interface Override {
  /** The dotted key in `server.yaml`. */
  readonly key: string;
  readonly flag?: keyof ConfigFlags;
  readonly variable: string;
  /** How the text of a flag or variable becomes the value the schema checks. */
  readonly read: (text: string) => unknown;
}

/** A number when the text is one; else the text, for the schema to refuse by name. */
function numberOrText(text: string): unknown {
  return /^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : text;
}

/** A comma-separated list: its items, trimmed, without empty ones. */
function commaList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

const OVERRIDES: readonly Override[] = [
  { key: "host", flag: "host", variable: "CHAT_HOST", read: (text) => text },
  { key: "port", flag: "port", variable: "CHAT_PORT", read: numberOrText },
  { key: "log.level", variable: "LOG_LEVEL", read: (text) => text },
  { key: "cluster.nats.servers", variable: "CHAT_NATS_SERVERS", read: commaList },
  { key: "limits.allowed_hosts", variable: "CHAT_ALLOWED_HOSTS", read: commaList },
  { key: "limits.allowed_origins", variable: "CHAT_ALLOWED_ORIGINS", read: commaList },
  { key: "limits.trusted_proxies", variable: "CHAT_TRUSTED_PROXIES", read: commaList },
  { key: "cluster.nats.auth", variable: "CHAT_NATS_AUTH", read: (text) => text },
  { key: "tls.cert_file", variable: "CHAT_TLS_CERT_FILE", read: (text) => text },
  { key: "tls.key_file", variable: "CHAT_TLS_KEY_FILE", read: (text) => text },
  { key: "auth.mode", variable: "CHAT_AUTH_MODE", read: (text) => text },
  { key: "auth.public_key_file", variable: "CHAT_AUTH_PUBLIC_KEY_FILE", read: (text) => text },
];

/** The folder holding one subfolder per environment, next to `src/`. */
export const DEFAULT_CONFIG_DIR: string = fromFileUrl(new URL("../../config", import.meta.url));
const DEFAULT_ENV = "local";
const ENV_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * Reads one file's document with `schema`. `sources` names where a key's
 * value came from when it was not the file (`--port`, `CHAT_PORT`).
 */
function readSection<T>(
  schema: Field<T>,
  raw: unknown,
  path: string,
  sources: ReadonlyMap<string, string> = new Map(),
): T {
  try {
    return schema.read(raw, "");
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    const where = sources.get(error.key) ??
      (error.key === "" ? `config file ${path}` : `"${error.key}" in ${path}`);
    return fail(where, error.problem);
  }
}

/**
 * Loads and validates the configuration of one environment. Throws
 * {@linkcode ConfigError} naming the file (or flag, or variable), the key
 * and the fix.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const { flags = {}, getEnv = (name: string) => Deno.env.get(name) } = options;
  const env = flags.env ?? getEnv("CHAT_ENV") ?? DEFAULT_ENV;
  if (!ENV_NAME.test(env)) {
    fail(
      flags.env !== undefined ? "--env" : "CHAT_ENV",
      `must be a folder name of lowercase letters, digits, "-" and "_": current value is ${
        showValue(env)
      }`,
    );
  }
  const configDir = flags.configDir ?? getEnv("CHAT_CONFIG_DIR") ?? DEFAULT_CONFIG_DIR;
  const serverPath = join(configDir, env, "server.yaml");
  const chatPath = join(configDir, env, "chat.yaml");

  let serverDocument = await readYamlFile(serverPath);
  const sources = new Map<string, string>();
  for (const { key, flag, variable, read } of OVERRIDES) {
    const flagText = flag === undefined ? undefined : flags[flag];
    const text = flagText ?? getEnv(variable);
    if (text === undefined) continue;
    serverDocument = setKey(serverDocument, key, read(text));
    sources.set(key, flagText !== undefined ? `--${flag}` : variable);
  }
  const server = readSection(serverSchema, serverDocument, serverPath, sources);
  const chat = readSection(chatSchema, await readYamlFile(chatPath), chatPath);

  const secrets = readSecrets(server, serverPath, getEnv, sources);
  const nats = server.cluster?.nats;
  // TLS over TCP is chosen for the whole connection, so one way for every server.
  const ways = new Set(nats?.servers.map((server) => server.replace(/^wss:/, "ws:").split(":")[0]));
  if (ways.size > 1) {
    fail(
      sources.get("cluster.nats.servers") ?? `"cluster.nats.servers" in ${serverPath}`,
      `must reach every NATS server the same way, all nats://, all tls://, or all ws:// and wss://: current value is ${
        JSON.stringify(nats?.servers)
      }`,
    );
  }
  const longestHeartbeat = nats === undefined
    ? Infinity
    : (nats.name_ttl - nameLeaseMargin(nats.name_ttl)) / 2;
  if (nats !== undefined && nats.heartbeat > longestHeartbeat) {
    fail(
      `"cluster.nats.heartbeat" in ${serverPath}`,
      `must be at most ${longestHeartbeat} (half of name_ttl, ${nats.name_ttl}, less the lease's margin, ${
        nameLeaseMargin(nats.name_ttl)
      }) so that a live instance renews its names twice before they lapse: current value is ${nats.heartbeat}`,
    );
  }

  return {
    env,
    files: { server: serverPath, chat: chatPath },
    server: {
      host: server.host,
      port: server.port,
      log: server.log,
      limits: {
        maxConnections: server.limits.max_connections,
        maxConnectionsPerIp: server.limits.max_connections_per_ip,
        maxFrameBytes: server.limits.max_frame_bytes,
        maxInboundBytesPerSecond: server.limits.max_inbound_bytes_per_s,
        maxBufferedBytes: server.limits.max_buffered_bytes,
        idleTimeout: server.limits.idle_timeout,
        allowedOrigins: server.limits.allowed_origins,
        allowedHosts: server.limits.allowed_hosts,
        trustedProxies: server.limits.trusted_proxies.map(normalizeAddress),
        connectRate: server.limits.connect_rate,
        connectBurst: server.limits.connect_burst,
        frameAncestors: server.limits.frame_ancestors,
      },
      history: server.history,
      cluster: nats === undefined ? undefined : {
        servers: nats.servers,
        nameTtl: nats.name_ttl,
        heartbeat: nats.heartbeat,
        maxOutbox: nats.max_outbox,
        keptPerRoom: nats.kept_per_room,
        startTimeout: nats.start_timeout,
        credentials: secrets.natsCredentials,
        requireAuth: (nats.auth ?? (env === "prod" ? "required" : "optional")) === "required",
        authSource: sources.get("cluster.nats.auth") ??
          (nats.auth === null
            ? `the "${env}" environment (${serverPath} does not set "cluster.nats.auth")`
            : `"cluster.nats.auth" in ${serverPath}`),
      },
      tls: server.tls === null
        ? undefined
        : { certFile: server.tls.cert_file, keyFile: server.tls.key_file },
      auth: {
        mode: server.auth.mode,
        algorithm: server.auth.algorithm,
        secret: secrets.authSecret,
        publicKeyFile: server.auth.public_key_file ?? undefined,
        nameClaim: server.auth.name_claim,
        rolesClaim: server.auth.roles_claim,
        issuer: server.auth.issuer ?? undefined,
        audience: server.auth.audience ?? undefined,
        expiryWarning: server.auth.expiry_warning,
        maxTokenLifetime: server.auth.max_token_lifetime,
        maxDevices: server.auth.max_devices,
        operatorPassword: secrets.operatorPassword,
      },
      apiKeys: secrets.apiKeys,
    },
    chat: {
      environment: chat.environment,
      maxMessageLen: chat.max_message_len,
      reservedNames: chat.reserved_names,
      presenceNoticeMaxMembers: chat.presence_notice_max_members,
      historySize: chat.history_size,
      pmHistorySize: chat.pm_history_size,
      roomIdleTtl: chat.room_idle_ttl,
      maxRooms: chat.max_rooms,
      unusedRoomTtl: chat.unused_room_ttl,
      roomCreateRate: chat.room_create_rate,
      roomCreateBurst: chat.room_create_burst,
      serverRoomCreateRate: chat.server_room_create_rate,
      serverRoomCreateBurst: chat.server_room_create_burst,
      presenceRate: chat.presence_rate,
      presenceBurst: chat.presence_burst,
      flood: {
        rate: chat.flood.rate,
        burst: chat.flood.burst,
        disconnectAfter: chat.flood.disconnect_after,
        addressRate: chat.flood.address_rate,
        addressBurst: chat.flood.address_burst,
        roomRate: chat.flood.room_rate,
        roomBurst: chat.flood.room_burst,
        serverRate: chat.flood.server_rate,
        serverBurst: chat.flood.server_burst,
      },
      sessionLinger: chat.session_linger,
      sessionBuffer: chat.session_buffer,
      editWindow: chat.edit_window,
      messages: chat.messages,
    },
  };
}

/** Hosts of the example domains, which shipped configs hold as placeholders. */
const PLACEHOLDER_HOST = /(^|\.)example\.(com|org|net)$/i;

/**
 * What an operator should hear of at start: settings that load but cannot
 * be what was meant, each one line naming the setting and the fix.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  const { allowedHosts } = config.server.limits;
  if (allowedHosts.length > 0 && allowedHosts.every((host) => PLACEHOLDER_HOST.test(host))) {
    warnings.push(
      `"limits.allowed_hosts" in ${config.files.server} lists only the placeholder ${
        allowedHosts.join(", ")
      }: requests for any other name are answered 421. Set CHAT_ALLOWED_HOSTS (comma-separated) to the names this server is reached by, and CHAT_ALLOWED_ORIGINS to the origins of the pages that open sockets here`,
    );
  }
  return warnings;
}
