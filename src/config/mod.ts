/**
 * Configuration: the only module that reads config files and environment
 * variables. Each environment has a folder `config/<env>/` with two YAML
 * files, `server.yaml` (network, logging, limits) and `chat.yaml` (what users
 * see). Flags win over environment variables, which win over the files.
 *
 * @module
 */

import { parse as parseYaml } from "@std/yaml";
import { fromFileUrl, join } from "@std/path";
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
} from "./_config_schema.ts";

/** A configuration problem an operator can fix; the message says how. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The placeholders each chat message template may use. */
export const MESSAGE_PLACEHOLDERS = {
  welcome: ["name"],
  connected: ["name"],
  disconnected: ["name"],
  chat: ["name", "message"],
  renamed: ["old", "new"],
  name_refused: ["name", "reason"],
  who: ["names"],
  env: ["env"],
  pong: [],
  about: [],
  help: ["commands"],
  usage: ["usage"],
  pm_sent: ["to", "message"],
  pm_received: ["from", "message"],
  user_not_found: ["name"],
  unknown_command: ["text"],
  shutdown: [],
  flood_warning: [],
  binary_refused: [],
  internal_error: [],
  bad_request: ["reason"],
  emote: ["name", "action"],
  help_command: ["usage", "summary"],
  rooms: ["rooms"],
  room_entered: ["room", "members"],
  room_joined: ["name", "room"],
  room_left: ["name", "room"],
  room_invalid: ["room"],
  room_limit: [],
  already_in_room: ["room"],
  history_empty: ["room"],
  degraded: [],
  recovered: [],
  not_sent: [],
} as const satisfies Record<string, readonly string[]>;

/** The name of a chat message template. */
export type MessageKey = keyof typeof MESSAGE_PLACEHOLDERS;
/** The values a template needs, one per placeholder. */
export type MessageValues<K extends MessageKey> = {
  readonly [P in (typeof MESSAGE_PLACEHOLDERS)[K][number]]: string;
};
/** Every chat message template, by name. */
export type Messages = { readonly [K in MessageKey]: string };

/** Log levels accepted by `log.level` and `LOG_LEVEL`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;
/** A log level. */
export type LogLevelName = (typeof LOG_LEVELS)[number];

const PORT_RANGE = { min: 0, max: 65535 } as const;

const DEFAULT_NAME_TTL = 15;
const DEFAULT_HEARTBEAT = 5;
const KIB = 1024;
const MIB = 1024 * KIB;

const serverSchema = object({
  host: string("127.0.0.1", { nonEmpty: true }),
  port: integer(8080, PORT_RANGE),
  log: object({
    level: oneOf(LOG_LEVELS, "info"),
    format: oneOf(["text", "json"], "text"),
  }),
  limits: object({
    max_connections: integer(10_000, { min: 1, max: 1_000_000 }),
    max_connections_per_ip: integer(50, { min: 1, max: 1_000_000 }),
    max_frame_bytes: integer(64 * KIB, { min: 1 * KIB, max: 64 * MIB }),
    max_buffered_bytes: integer(1 * MIB, { min: 1 * KIB, max: 1024 * MIB }),
    idle_timeout: integer(30, { min: 0, max: 3600 }),
    allowed_origins: stringList(["*"]),
  }),
  history: object({
    store: oneOf(["memory", "kv"], "memory"),
    path: string("data/history.kv", { nonEmpty: true }),
  }),
  cluster: optional(object({
    nats: object({
      servers: stringList(),
      name_ttl: number(DEFAULT_NAME_TTL, { min: 1, max: 3600 }),
      heartbeat: number(DEFAULT_HEARTBEAT, { min: 0.1, max: 600 }),
    }),
  })),
});

const messageFields = Object.fromEntries(
  Object.entries(MESSAGE_PLACEHOLDERS).map(([key, names]) => [key, template(names)]),
) as { [K in MessageKey]: Field<string> };

const chatSchema = object({
  environment: string(undefined, { nonEmpty: true }),
  max_message_len: integer(1000, { min: 1, max: 1_000_000 }),
  reserved_names: stringList(["server", "system", "admin", "root", "moderator"]),
  presence_notice_max_members: integer(200, { min: 0, max: 1_000_000 }),
  history_size: integer(100, { min: 0, max: 100_000 }),
  room_idle_ttl: number(3600, { min: 0, max: 31_536_000 }),
  max_rooms: integer(1000, { min: 1, max: 1_000_000 }),
  flood: object({
    rate: number(5, { min: 0.01, max: 100_000 }),
    burst: integer(10, { min: 1, max: 100_000 }),
    disconnect_after: number(10, { min: 0.1, max: 86_400 }),
  }),
  messages: object(messageFields),
});

/** Network and logging settings, from `server.yaml`. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly log: { readonly level: LogLevelName; readonly format: "text" | "json" };
  readonly limits: ConnectionLimits;
  /** Where room history is kept when the server runs alone. */
  readonly history: { readonly store: "memory" | "kv"; readonly path: string };
  /** Set when instances form one chat through NATS; `undefined` runs alone. */
  readonly cluster: ClusterConfig | undefined;
}

/** `server.yaml`'s `cluster.nats`. */
export interface ClusterConfig {
  /** WebSocket URLs of the NATS servers. */
  readonly servers: readonly string[];
  /** Seconds a user's name outlives their instance's last heartbeat. */
  readonly nameTtl: number;
  /** Seconds between heartbeats; well under `nameTtl`. */
  readonly heartbeat: number;
}

/** What one client may take of the server, from `server.yaml`'s `limits`. */
export interface ConnectionLimits {
  /** Open sockets in all; past it upgrades are answered 503. */
  readonly maxConnections: number;
  /** Open sockets from one client address; past it upgrades are answered 429. */
  readonly maxConnectionsPerIp: number;
  /** A larger frame closes the socket with 1009. */
  readonly maxFrameBytes: number;
  /** A socket with more unsent data than this is closed with 1013. */
  readonly maxBufferedBytes: number;
  /** Seconds of silence before a ping; no pong closes the socket. 0 disables. */
  readonly idleTimeout: number;
  /** `Origin` headers an upgrade may carry; `*` allows any. */
  readonly allowedOrigins: readonly string[];
}

/** The token bucket every connection's messages and commands pass through. */
export interface FloodLimits {
  /** Tokens returned per second. */
  readonly rate: number;
  /** Tokens a quiet connection saves up. */
  readonly burst: number;
  /** Seconds of continuous flooding after which the socket is closed with 1008. */
  readonly disconnectAfter: number;
}

/** What users see, from `chat.yaml`. */
export interface ChatConfig {
  /** Shown by `!env`, such as `LOCAL`. */
  readonly environment: string;
  /** Longer texts are cut to this many code points. */
  readonly maxMessageLen: number;
  /** Names nobody may take, compared as names are. */
  readonly reservedNames: readonly string[];
  /** Join and leave notices stop above this many members. */
  readonly presenceNoticeMaxMembers: number;
  /** Messages each room keeps for newcomers and resumes. */
  readonly historySize: number;
  /** Seconds an empty room (other than the lobby) is kept, with its history. */
  readonly roomIdleTtl: number;
  /** Rooms that may exist at once. */
  readonly maxRooms: number;
  readonly flood: FloodLimits;
  readonly messages: Messages;
}

/** The whole, validated configuration. */
export interface Config {
  /** The environment folder the files came from, such as `local`. */
  readonly env: string;
  readonly server: ServerConfig;
  readonly chat: ChatConfig;
}

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

/** The folder holding one subfolder per environment, next to `src/`. */
export const DEFAULT_CONFIG_DIR: string = fromFileUrl(new URL("../config", import.meta.url));
const DEFAULT_ENV = "local";
const ENV_NAME = /^[a-z0-9][a-z0-9_-]*$/;

function fail(what: string, problem: string): never {
  throw new ConfigError(`Cannot start server as ${what} ${problem}`);
}

async function readYamlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      fail(`config file ${path}`, "does not exist: create it or choose another --env");
    }
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      fail(`config file ${path}`, "cannot be read: grant read access to it");
    }
    throw error;
  }
  try {
    return parseYaml(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return fail(`config file ${path}`, `is not valid YAML: ${detail}`);
  }
}

function readSection<T>(schema: Field<T>, raw: unknown, path: string): T {
  try {
    return schema.read(raw, "");
  } catch (error) {
    if (error instanceof SchemaError) {
      const where = error.key === "" ? `config file ${path}` : `"${error.key}" in ${path}`;
      fail(where, error.problem);
    }
    throw error;
  }
}

function readPort(value: string, source: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > PORT_RANGE.max) {
    fail(
      source,
      `must be an integer from ${PORT_RANGE.min} to ${PORT_RANGE.max}: current value is ${
        showValue(value)
      }`,
    );
  }
  return port;
}

/**
 * Loads and validates the configuration of one environment. Throws
 * {@linkcode ConfigError} naming the file, the key and the fix.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const { flags = {}, getEnv = (name: string) => Deno.env.get(name) } = options;
  const env = flags.env ?? getEnv("CHAT_ENV") ?? DEFAULT_ENV;
  const envSource = flags.env !== undefined ? "--env" : "CHAT_ENV";
  if (!ENV_NAME.test(env)) {
    fail(
      envSource,
      `must be a folder name of lowercase letters, digits, "-" and "_": current value is ${
        showValue(env)
      }`,
    );
  }
  const configDir = flags.configDir ?? getEnv("CHAT_CONFIG_DIR") ?? DEFAULT_CONFIG_DIR;
  const serverPath = join(configDir, env, "server.yaml");
  const chatPath = join(configDir, env, "chat.yaml");
  const server = readSection(serverSchema, await readYamlFile(serverPath), serverPath);
  const chat = readSection(chatSchema, await readYamlFile(chatPath), chatPath);

  const host = flags.host ?? getEnv("CHAT_HOST") ?? server.host;
  if (host === "") fail(flags.host !== undefined ? "--host" : "CHAT_HOST", "must not be empty");
  const portFlag = flags.port ?? getEnv("CHAT_PORT");
  const port = portFlag === undefined
    ? server.port
    : readPort(portFlag, flags.port !== undefined ? "--port" : "CHAT_PORT");
  const logLevel = getEnv("LOG_LEVEL");
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel as LogLevelName)) {
    fail(
      "LOG_LEVEL",
      `must be one of ${LOG_LEVELS.join(", ")}: current value is ${showValue(logLevel)}`,
    );
  }

  return {
    env,
    server: {
      host,
      port,
      log: { ...server.log, level: (logLevel as LogLevelName | undefined) ?? server.log.level },
      limits: {
        maxConnections: server.limits.max_connections,
        maxConnectionsPerIp: server.limits.max_connections_per_ip,
        maxFrameBytes: server.limits.max_frame_bytes,
        maxBufferedBytes: server.limits.max_buffered_bytes,
        idleTimeout: server.limits.idle_timeout,
        allowedOrigins: server.limits.allowed_origins,
      },
      history: server.history,
      cluster: readCluster(server.cluster, getEnv("CHAT_NATS_SERVERS"), serverPath),
    },
    chat: {
      environment: chat.environment,
      maxMessageLen: chat.max_message_len,
      reservedNames: chat.reserved_names,
      presenceNoticeMaxMembers: chat.presence_notice_max_members,
      historySize: chat.history_size,
      roomIdleTtl: chat.room_idle_ttl,
      maxRooms: chat.max_rooms,
      flood: {
        rate: chat.flood.rate,
        burst: chat.flood.burst,
        disconnectAfter: chat.flood.disconnect_after,
      },
      messages: chat.messages,
    },
  };
}

/** The cluster settings: the file's, with `CHAT_NATS_SERVERS` (comma-separated) winning. */
function readCluster(
  cluster:
    | { readonly nats: { servers: readonly string[]; name_ttl: number; heartbeat: number } }
    | null,
  serversOverride: string | undefined,
  path: string,
): ClusterConfig | undefined {
  if (cluster === null && serversOverride === undefined) return undefined;
  const source = serversOverride === undefined
    ? `"cluster.nats.servers" in ${path}`
    : "CHAT_NATS_SERVERS";
  const servers = serversOverride?.split(",").map((server) => server.trim()) ??
    cluster?.nats.servers ?? [];
  const nameTtl = cluster?.nats.name_ttl ?? DEFAULT_NAME_TTL;
  const heartbeat = cluster?.nats.heartbeat ?? DEFAULT_HEARTBEAT;
  if (servers.length === 0 || servers.includes("")) {
    fail(source, "must list at least one ws:// URL of a NATS server");
  }
  for (const server of servers) {
    if (!/^wss?:\/\//.test(server)) {
      fail(
        source,
        `must hold ws:// or wss:// URLs of NATS WebSocket listeners: current value is ${
          showValue(server)
        }`,
      );
    }
  }
  if (heartbeat * 2 > nameTtl) {
    fail(
      `"cluster.nats.heartbeat" in ${path}`,
      `must be at most half of name_ttl (${nameTtl}) so a live instance never loses its names: current value is ${heartbeat}`,
    );
  }
  return { servers, nameTtl, heartbeat };
}

/** A template split once into literal text and the names of its placeholders, alternating. */
const compiled = new Map<string, readonly string[]>();

function compile(template: string): readonly string[] {
  let parts = compiled.get(template);
  if (parts === undefined) {
    // split() with a capturing group alternates literal, name, literal, ...
    parts = template.split(/\$(\$|\w*)/).map((part, index) =>
      index % 2 === 1 && part === "$" ? "" : part
    );
    // "$$" is a literal dollar sign: fold it into the text around it.
    const folded: string[] = [parts[0]];
    for (let index = 1; index < parts.length; index += 2) {
      if (parts[index] === "") folded[folded.length - 1] += "$" + parts[index + 1];
      else folded.push(parts[index], parts[index + 1]);
    }
    parts = folded;
    compiled.set(template, parts);
  }
  return parts;
}

/** Fills a message template: `$name` takes `values.name`, `$$` is a dollar sign. */
export function renderMessage<K extends MessageKey>(
  messages: Messages,
  key: K,
  values: MessageValues<K>,
): string {
  const named = values as Readonly<Record<string, string>>;
  const parts = compile(messages[key]);
  let text = parts[0];
  for (let index = 1; index < parts.length; index += 2) {
    text += named[parts[index]] + parts[index + 1];
  }
  return text;
}
