/**
 * The validated configuration, as the rest of the server reads it.
 *
 * @module
 */

import type { Messages } from "../messages.ts";

/** Log levels accepted by `log.level` and `LOG_LEVEL`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;
/** A log level. */
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Algorithms `auth.algorithm` accepts for signed tokens. */
export const TOKEN_ALGORITHMS = ["HS256", "RS256", "ES256", "EdDSA"] as const;
/** A token signature algorithm. */
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

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
  /** Set to serve `https` and `wss`. */
  readonly tls: TlsConfig | undefined;
  /** Who may connect, and as whom. */
  readonly auth: AuthConfig;
  /** Keys of the server API (`CHAT_API_KEYS`); none turns the API off. */
  readonly apiKeys: readonly string[];
}

/** `server.yaml`'s `tls`: PEM files. */
export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
}

/** `server.yaml`'s `auth`, with the secrets from the environment. */
export interface AuthConfig {
  /** `open`: anyone picks a name; `token`: a signed token says who a client is. */
  readonly mode: "open" | "token";
  readonly algorithm: TokenAlgorithm;
  /** The HS256 secret (`CHAT_AUTH_SECRET`). */
  readonly secret: string | undefined;
  /** The PEM file of the public key, for the other algorithms. */
  readonly publicKeyFile: string | undefined;
  /** The claim holding the user's name. */
  readonly nameClaim: string;
  /** The claim holding the user's roles (a string or a list). */
  readonly rolesClaim: string;
  /** When set, tokens must carry this `iss`... */
  readonly issuer: string | undefined;
  /** ...and this `aud`. */
  readonly audience: string | undefined;
  /** Seconds before a token expires that its user is warned. */
  readonly expiryWarning: number;
  /**
   * Seconds a token may be valid at most: from its `iat` to its `exp`, and
   * from now to its `exp`; a longer-lived token is refused.
   */
  readonly maxTokenLifetime: number;
  /** Connections one account may have open at once; a new one past it closes the oldest. */
  readonly maxDevices: number;
  /** Open mode: `!op <password>` makes a moderator (`CHAT_OPERATOR_PASSWORD`). */
  readonly operatorPassword: string | undefined;
}

/** `server.yaml`'s `cluster.nats`. */
export interface ClusterConfig {
  /** URLs of the NATS servers: all `nats://` and `tls://`, or all `ws://` and `wss://`. */
  readonly servers: readonly string[];
  /** Seconds a user's name outlives their instance's last heartbeat. */
  readonly nameTtl: number;
  /** Seconds between heartbeats; well under `nameTtl`. */
  readonly heartbeat: number;
  /** Room events kept while NATS is away; beyond, users are told to try later. */
  readonly maxOutbox: number;
  /**
   * Stream messages NATS keeps per room and subject (at least the room's
   * history): how far behind an instance may fall and still read everything.
   */
  readonly keptPerRoom: number;
  /** Seconds to keep trying to reach NATS at start before giving up. */
  readonly startTimeout: number;
  /** `CHAT_NATS_USER` and `CHAT_NATS_PASSWORD`, or `CHAT_NATS_TOKEN`. */
  readonly credentials: { readonly user: string; readonly pass: string } | {
    readonly token: string;
  } | undefined;
  /**
   * Whether to refuse to start against a NATS that lets clients in without
   * credentials (`cluster.nats.auth: required`; by default in `prod`)...
   */
  readonly requireAuth: boolean;
  /** ...and where that was decided, for the message. */
  readonly authSource: string;
}

/** What one client may take of the server, from `server.yaml`'s `limits`. */
export interface ConnectionLimits {
  /** Open sockets in all; past it upgrades are answered 503. */
  readonly maxConnections: number;
  /** Open sockets from one client address; past it upgrades are answered 429. */
  readonly maxConnectionsPerIp: number;
  /** A larger frame closes the socket with 1009. */
  readonly maxFrameBytes: number;
  /**
   * What one socket may send per second, on average (four frames of
   * `maxFrameBytes` at once); more closes it with 1008.
   */
  readonly maxInboundBytesPerSecond: number;
  /** A socket with more unsent data than this is closed with 1013. */
  readonly maxBufferedBytes: number;
  /** Seconds of silence before a ping; no pong closes the socket. 0 disables. */
  readonly idleTimeout: number;
  /** `Origin` headers an upgrade may carry; `*` allows any. */
  readonly allowedOrigins: readonly string[];
  /** `Host` headers a request may carry (this server's names); `*` allows any. */
  readonly allowedHosts: readonly string[];
  /**
   * Addresses of proxies in front of the server: for their requests the
   * client's address is taken from `X-Forwarded-For`.
   */
  readonly trustedProxies: readonly string[];
  /** New connections one client address earns back per second... */
  readonly connectRate: number;
  /** ...and may open at once; past it upgrades are answered 429. */
  readonly connectBurst: number;
  /** Origins whose pages may show the browser client in a frame; none by default. */
  readonly frameAncestors: readonly string[];
}

/** The token bucket every connection's messages and commands pass through. */
export interface FloodLimits {
  /** Tokens returned per second. */
  readonly rate: number;
  /** Tokens a quiet connection saves up. */
  readonly burst: number;
  /** Seconds of continuous flooding after which the socket is closed with 1008. */
  readonly disconnectAfter: number;
  /** Tokens returned per second to one client address, across all its connections... */
  readonly addressRate: number;
  /** ...and the tokens it saves up. */
  readonly addressBurst: number;
  /** Messages one room accepts per second, from everyone together... */
  readonly roomRate: number;
  /** ...and at once. */
  readonly roomBurst: number;
  /** Messages (to rooms and private) the whole server accepts per second... */
  readonly serverRate: number;
  /** ...and at once. */
  readonly serverBurst: number;
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
  /** Token mode: private messages each account keeps, stored like a room's (0 keeps none). */
  readonly pmHistorySize: number;
  /** Seconds an empty room (other than the lobby) is kept, with its history. */
  readonly roomIdleTtl: number;
  /** Rooms that may exist at once. */
  readonly maxRooms: number;
  /** Seconds an empty room that never held a message is kept. */
  readonly unusedRoomTtl: number;
  /** Rooms one user, and one client address, may create per second... */
  readonly roomCreateRate: number;
  /** ...and at once. */
  readonly roomCreateBurst: number;
  /** Rooms everyone together may create per second... */
  readonly serverRoomCreateRate: number;
  /** ...and at once. */
  readonly serverRoomCreateBurst: number;
  /** Join and leave notices one room shows per second... */
  readonly presenceRate: number;
  /** ...and at once; past it they are left out. */
  readonly presenceBurst: number;
  readonly flood: FloodLimits;
  /** Seconds a dropped session that can resume keeps its name, room and token; 0 ends it at once. */
  readonly sessionLinger: number;
  /** Private messages kept for a lingering session. */
  readonly sessionBuffer: number;
  /** Seconds after sending it that its author may still edit or remove a message; 0: never. */
  readonly editWindow: number;
  readonly messages: Messages;
}

/** The whole, validated configuration. */
export interface Config {
  /** The environment folder the files came from, such as `local`. */
  readonly env: string;
  /** The files read, for messages about their settings. */
  readonly files: { readonly server: string; readonly chat: string };
  readonly server: ServerConfig;
  readonly chat: ChatConfig;
}
