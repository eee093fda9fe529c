/**
 * HTTP: the WebSocket upgrade (after the origin check, connection limits,
 * bans and, in token mode, the signed token; choosing the protocol), the
 * server API, the health check, metrics and the browser client.
 * The handler is a plain function of a `Request`, so it is tested without
 * `Deno.serve`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Admission, type Refusal } from "./admission.ts";
import { createApi } from "./api.ts";
import { clientAddress } from "./addresses.ts";
import type { Identity, TokenVerifier } from "../auth/tokens.ts";
import type { Chatroom } from "../chat/mod.ts";
import type { ConnectionLimits } from "../config/mod.ts";
import type { Place } from "../vocabulary/events.ts";
import { serveChatSocket } from "../socket/connection.ts";
import { type DeviceRelay, deviceRelay, serveRelayedDevices } from "../socket/relay.ts";
import type { Cluster } from "../broker/types.ts";
import { createMetrics, type Metrics, renderMetrics } from "../metrics.ts";
import { Outbox } from "../socket/outbox.ts";
import { V2_PROTOCOL } from "../protocol/v2.ts";
import { pageSecurityHeaders, serveStatic, type StaticFiles } from "./static.ts";

/** Paths where a WebSocket upgrade is accepted. */
const SOCKET_PATHS = new Set(["/", "/ws"]);

const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" };
const METRICS_HEADERS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

const log = getLogger(["chat", "http"]);

function textResponse(body: string, status: number, headers: HeadersInit = {}): Response {
  return new Response(body, { status, headers: { ...TEXT_HEADERS, ...headers } });
}

/** What {@linkcode createHandler} serves. */
export interface HandlerOptions {
  chatroom: Chatroom;
  limits: ConnectionLimits;
  /** Where traffic is counted; `/metrics` shows it. */
  metrics?: Metrics;
  /** The browser client, from {@linkcode loadStaticFiles}. */
  staticFiles?: StaticFiles;
  /** Whether the link to the other instances works (always, alone). */
  healthy?: () => boolean;
  /** Open file descriptors and their limit, when the process may read them. */
  descriptors?: () => Descriptors | undefined;
  /** Where the rates of new connections are kept; one per server. */
  admission?: Admission;
  /** Token mode: what checks signed tokens. */
  verifier?: TokenVerifier;
  /** The other instances, in a cluster: an account's devices on them are relayed to its session. */
  cluster?: Cluster;
  /** Keys of the server API; none turns it off. */
  apiKeys?: readonly string[];
  /** Milliseconds an API request's body may take to arrive (10 s by default). */
  apiBodyTimeout?: number;
}

/** Open file descriptors against the process's limit. */
export interface Descriptors {
  readonly open: number;
  readonly limit: number;
}

/** A request handler for `Deno.serve`. */
export type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Builds the request handler for `Deno.serve`. */
export function createHandler(options: HandlerOptions): Handler {
  const {
    chatroom,
    limits,
    metrics = createMetrics(),
    staticFiles = new Map(),
    healthy = () => true,
    descriptors = () => undefined,
    admission = new Admission(limits),
    verifier,
    apiKeys = [],
    apiBodyTimeout,
    cluster,
  } = options;
  const outbox = new Outbox();
  // Token mode in a cluster: devices go to their account's live session, wherever it is.
  let relay: DeviceRelay | undefined;
  if (cluster !== undefined && verifier !== undefined) {
    relay = deviceRelay(cluster);
    serveRelayedDevices(cluster.relay, chatroom, { limits, metrics, outbox, verifier });
  }
  const health = () => ({
    status: healthy() ? "ok" : "degraded",
    connections: admission.open,
    descriptors: descriptors(),
  });
  const api = createApi({ chatroom, metrics, keys: apiKeys, health, bodyTimeout: apiBodyTimeout });

  const refuse = (refusal: Refusal, address: string, request: Request): Response => {
    metrics.connectionsRefused.inc(refusal.reason);
    log.info("Refused {method} {path} from {address}: {why} (host {host}, origin {origin})", {
      method: request.method,
      path: new URL(request.url).pathname,
      address,
      why: refusal.message,
      host: request.headers.get("host"),
      origin: request.headers.get("origin"),
    });
    return textResponse(`${refusal.message}\n`, refusal.status, { connection: "close" });
  };

  /**
   * Answers an upgrade request: refused before the upgrade (one HTTP answer)
   * when a limit, a ban or a token says no; else the socket joins the chat.
   */
  const upgrade = (
    request: Request,
    url: URL,
    address: string,
  ): Response | Promise<Response> => {
    if (!SOCKET_PATHS.has(url.pathname)) return textResponse("Not Found\n", 404);
    const admitted = admission.admit(request, address);
    if ("reason" in admitted) return refuse(admitted, address, request);
    const place = admitted;
    const offered = request.headers.get("sec-websocket-protocol")?.split(",") ?? [];
    const v2 = offered.some((protocol) => protocol.trim() === V2_PROTOCOL);
    const token = url.searchParams.get("token");
    // Open mode, or a v2 client that will send its token in hello: no wait.
    if (verifier === undefined || (token === null && v2)) {
      return accept(request, url, address, place, { v2 });
    }
    if (token === null) {
      place.release();
      const message = "Unauthorized: a token is required: connect with ?token=<signed token>";
      return refuse({ reason: "token", status: 401, message }, address, request);
    }
    return verifier.verify(token).then(
      (identity) => accept(request, url, address, place, { v2, identity, token }),
      (error: unknown) => {
        place.release();
        const reason = error instanceof Error ? error.message : "the token could not be checked";
        return refuse(
          { reason: "token", status: 401, message: `Unauthorized: ${reason}` },
          address,
          request,
        );
      },
    );
  };

  /**
   * Upgrades a request that passed every check but the gate's (bans, and a
   * token's name), asked here so a refused client costs one HTTP answer; the
   * session's start asks again, as nothing is held before it.
   */
  const accept = (
    request: Request,
    url: URL,
    address: string,
    place: Place,
    { v2, identity, token }: { v2: boolean; identity?: Identity; token?: string },
  ): Response => {
    const refusal = chatroom.refusalAtUpgrade(identity, address);
    if (refusal !== undefined) {
      place.release();
      if (refusal.kind === "banned") {
        const until = new Date(refusal.ban.until).toISOString();
        const message = `Banned until ${until}: ${refusal.ban.reason}`;
        return refuse({ reason: "banned", status: 403, message }, address, request);
      }
      const message = `Unauthorized: ${refusal.reason}`;
      return refuse({ reason: "token", status: 401, message }, address, request);
    }
    let upgraded: ReturnType<typeof Deno.upgradeWebSocket>;
    try {
      upgraded = Deno.upgradeWebSocket(request, {
        idleTimeout: limits.idleTimeout,
        protocol: v2 ? V2_PROTOCOL : undefined,
      });
    } catch {
      place.release();
      return textResponse("Bad Request: invalid WebSocket upgrade\n", 400);
    }
    serveChatSocket(upgraded.socket, chatroom, {
      protocol: v2 ? "v2" : "v1",
      limits,
      metrics,
      outbox,
      name: url.searchParams.get("name") ?? undefined,
      room: url.searchParams.get("room") ?? undefined,
      address,
      identity,
      token,
      verifier,
      place,
      relay,
    });
    return upgraded.response;
  };

  return (request, info) => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      // The URL is made from the Host header: one that cannot be a host is refused.
      return textResponse("Bad Request: the Host header is not a host name\n", 400, {
        connection: "close",
      });
    }
    const address = clientAddress(
      info.remoteAddr.hostname,
      request.headers.get("x-forwarded-for"),
      limits.trustedProxies,
    );
    const wrongHost = admission.checkHost(request.headers.get("host"));
    if (wrongHost !== undefined) return refuse(wrongHost, address, request);
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return upgrade(request, url, address);
    }
    if (url.pathname.startsWith("/api/")) return api(request);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return textResponse("Method Not Allowed\n", 405, { allow: "GET, HEAD" });
    }
    switch (url.pathname) {
      case "/healthz":
        // Degraded still serves: local users chat on while the cluster is away.
        return Response.json(health());
      case "/metrics":
        return new Response(renderMetrics(metrics, { openConnections: admission.open }), {
          headers: METRICS_HEADERS,
        });
      default: {
        const file = staticFiles.get(url.pathname);
        if (file === undefined) return textResponse("Not Found\n", 404);
        return serveStatic(request, file, pageSecurityHeaders(url.host, limits.frameAncestors));
      }
    }
  };
}
