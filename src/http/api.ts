/**
 * The server API: `/api/v1/...` for the deployer's backend, with
 * `Authorization: Bearer <key>` (keys from `CHAT_API_KEYS`). JSON in and out;
 * every error is `{"error": {"code", "message"}}` with the fitting status.
 * See docs/api.md.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { API_MODERATOR, type Chatroom, type MessageEvent, type Outcome } from "../chat/mod.ts";
import { MAX_DURATION_SECONDS } from "../text/duration.ts";
import type { Metrics } from "../metrics.ts";
import { isOneOf } from "../auth/secrets.ts";

/** Largest request body accepted, in bytes. */
export const MAX_API_BODY_BYTES = 64 * 1024;
/** Most messages one history request returns. */
const MAX_HISTORY_LIMIT = 1000;

const log = getLogger(["chat", "api"]);

/** What the API needs of the server. */
export interface ApiOptions {
  readonly chatroom: Chatroom;
  readonly metrics: Metrics;
  /** The accepted keys; none turns the API off. */
  readonly keys: readonly string[];
  /** What `/api/v1/health` answers, as `/healthz` does. */
  readonly health: () => Record<string, unknown>;
}

/** A failed request: its status, stable code and message. */
class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

type Json = Record<string, unknown>;

function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return Response.json(body, { status, headers });
}

function errorResponse(error: ApiError): Response {
  const headers: HeadersInit = error.status === 401 ? { "www-authenticate": "Bearer" } : {};
  return json({ error: { code: error.code, message: error.message } }, error.status, headers);
}

/** Reads a JSON object body of at most {@linkcode MAX_API_BODY_BYTES}. */
async function readBody(request: Request): Promise<Json> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "send a JSON body with Content-Type: application/json",
    );
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_API_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_API_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError(400, "bad_request", "the body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(400, "bad_request", "the body must be a JSON object");
  }
  return parsed as Json;
}

/** Whether a request comes with a body (the reason of a disconnect is optional). */
function hasBody(request: Request): boolean {
  const length = request.headers.get("content-length");
  return request.headers.has("transfer-encoding") || (length !== null && length !== "0");
}

function tooLarge(): ApiError {
  return new ApiError(413, "too_large", `the body may be at most ${MAX_API_BODY_BYTES} bytes`);
}

function text(body: Json, key: string, options: { optional?: boolean } = {}): string {
  const value = body[key];
  if (value === undefined && options.optional) return "";
  if (typeof value !== "string" || (!options.optional && value.trim() === "")) {
    throw new ApiError(400, "bad_request", `"${key}" must be a non-empty string`);
  }
  return value;
}

function seconds(body: Json, key: string): number {
  const value = body[key];
  if (
    !Number.isSafeInteger(value) || (value as number) < 1 ||
    (value as number) > MAX_DURATION_SECONDS
  ) {
    throw new ApiError(
      400,
      "bad_request",
      `"${key}" must be a whole number of seconds from 1 to ${MAX_DURATION_SECONDS}`,
    );
  }
  return value as number;
}

/** A message as the API shows it. */
function message(event: MessageEvent): Json {
  const { id, seq, from, text, emote, sentAt } = event;
  return { id, seq, from, text, emote, sentAt: new Date(sentAt).toISOString() };
}

/** The answer to a moderation outcome. */
function outcome(result: Outcome, target: string, created = false): Response {
  if (result.ok) return json({ ok: true, what: result.what }, created ? 201 : 200);
  switch (result.problem) {
    case "not_found":
      throw new ApiError(404, "not_found", `${target} is not found`);
    case "outranked":
      throw new ApiError(403, "forbidden", `${target} may not be moderated`);
    case "invalid":
      throw new ApiError(400, "bad_request", `"${target}" is neither a valid name nor an address`);
    case "not_saved":
      throw new ApiError(503, "unavailable", "that could not be saved right now: try again");
  }
}

/** A route: its method, a pattern over the path after `/api/v1`, and its answer. */
interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  readonly pattern: URLPattern;
  handle(request: Request, params: Record<string, string>, url: URL): Promise<Response> | Response;
}

/** The handler of `/api/v1/...`. */
export function createApi(options: ApiOptions): (request: Request) => Promise<Response> {
  const { chatroom, metrics, keys } = options;
  const { backend, moderation } = chatroom;
  const route = (
    method: Route["method"],
    pathname: string,
    handle: Route["handle"],
  ): Route => ({ method, pattern: new URLPattern({ pathname: `/api/v1${pathname}` }), handle });

  const routes: Route[] = [
    route("GET", "/health", () => json(options.health())),
    route("GET", "/rooms", () => json({ rooms: backend.roomSummaries() })),
    route("GET", "/rooms/:room/members", (_request, { room }) => {
      const found = backend.membersOf(room);
      if (found === undefined) throw new ApiError(404, "not_found", `there is no room ${room}`);
      return json(found);
    }),
    route("GET", "/rooms/:room/history", async (_request, { room }, url) => {
      const sinceText = url.searchParams.get("since");
      const since = sinceText === null ? undefined : Number(sinceText);
      if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) {
        throw new ApiError(
          400,
          "bad_request",
          '"since" must be a seq: a whole number of at least 0',
        );
      }
      const limitText = url.searchParams.get("limit");
      const limit = limitText === null ? MAX_HISTORY_LIMIT : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
        throw new ApiError(400, "bad_request", `"limit" must be from 1 to ${MAX_HISTORY_LIMIT}`);
      }
      const epoch = url.searchParams.get("epoch") ?? undefined;
      const history = await backend.historyOf(
        room,
        since === undefined ? undefined : { epoch, seq: since },
        limit,
      ).catch((error: Error) => {
        throw new ApiError(503, "unavailable", `${error.message}: try again`);
      });
      if (history === undefined) throw new ApiError(404, "not_found", `there is no room ${room}`);
      return json({
        room: history.room,
        epoch: history.epoch,
        ...(history.gap === undefined ? {} : { gap: history.gap }),
        more: history.more,
        messages: history.messages.map(message),
      });
    }),
    route("POST", "/rooms/:room/messages", async (request, { room }) => {
      const body = await readBody(request);
      const result = backend.publishAs(text(body, "from"), room, text(body, "text"));
      if (typeof result === "object") return json({ id: result.id, room }, 202);
      throw publishError(result, room);
    }),
    route("POST", "/users/:name/messages", async (request, { name }) => {
      const body = await readBody(request);
      const result = backend.sendPrivateAs(text(body, "from"), name, text(body, "text"));
      if (typeof result === "object") return json({ id: result.id, to: name }, 202);
      throw publishError(result, name);
    }),
    route("POST", "/users/:name/disconnect", async (request, { name }) => {
      const body = hasBody(request) ? await readBody(request) : {};
      const reason = text(body, "reason", { optional: true }) || "no reason given";
      return outcome(moderation.kick(API_MODERATOR, name, reason), name);
    }),
    route("GET", "/bans", () =>
      json({
        bans: moderation.bans().filter((ban, _, all) =>
          // An address banned with a name is listed with it.
          ban.name !== undefined ||
          !all.some((named) =>
            named.name !== undefined && named.address === ban.address && named.at === ban.at
          )
        ).map((ban) => ({
          ...(ban.name === undefined ? {} : { name: ban.name }),
          ...(ban.address === undefined ? {} : { address: ban.address }),
          until: new Date(ban.until).toISOString(),
          reason: ban.reason,
          by: ban.by,
        })),
      })),
    route("POST", "/bans", async (request) => {
      const body = await readBody(request);
      const target = text(body, "target");
      const reason = text(body, "reason", { optional: true }) || "no reason given";
      return outcome(
        await moderation.ban(API_MODERATOR, target, seconds(body, "seconds"), reason),
        target,
        true,
      );
    }),
    route("DELETE", "/bans/:target", async (_request, { target }) => {
      return outcome(await moderation.unban(API_MODERATOR, target), target);
    }),
  ];

  const authorized = (request: Request): boolean => {
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match !== null && isOneOf(match[1], keys);
  };

  const answer = async (request: Request): Promise<Response> => {
    if (keys.length === 0) {
      throw new ApiError(404, "api_disabled", "the server API is off: set CHAT_API_KEYS to use it");
    }
    if (!authorized(request)) {
      throw new ApiError(
        401,
        "unauthorized",
        'send "Authorization: Bearer <key>" with a key of CHAT_API_KEYS',
      );
    }
    const url = new URL(request.url);
    const matching = routes.filter((candidate) => candidate.pattern.test(url));
    if (matching.length === 0) {
      throw new ApiError(404, "not_found", `no endpoint at ${url.pathname}`);
    }
    const found = matching.find((candidate) => candidate.method === request.method);
    if (found === undefined) {
      throw new ApiError(
        405,
        "method_not_allowed",
        `${url.pathname} takes ${matching.map((candidate) => candidate.method).join(", ")}`,
      );
    }
    const groups = found.pattern.exec(url)?.pathname.groups ?? {};
    let params: Record<string, string>;
    try {
      params = Object.fromEntries(
        Object.entries(groups).map(([key, value]) => [key, decodeURIComponent(value ?? "")]),
      );
    } catch {
      throw new ApiError(400, "bad_request", "the path is not valid percent-encoding");
    }
    return await found.handle(request, params, url);
  };

  return async (request) => {
    let response: Response;
    try {
      response = await answer(request);
    } catch (error) {
      if (error instanceof ApiError) {
        response = errorResponse(error);
      } else {
        metrics.errors.inc();
        log.error("Failed to answer {method} {path}: {error}", {
          method: request.method,
          path: new URL(request.url).pathname,
          error,
        });
        response = errorResponse(new ApiError(500, "internal", "the server failed to answer"));
      }
    }
    metrics.apiRequests.inc(response.status < 300 ? "2xx" : response.status < 500 ? "4xx" : "5xx");
    return response;
  };
}

/** The error for a message that could not be sent. */
function publishError(problem: string, target: string): ApiError {
  switch (problem) {
    case "name_invalid":
      return new ApiError(400, "bad_request", '"from" must be a valid, unreserved name');
    case "name_in_use":
      return new ApiError(409, "conflict", '"from" is the name of a connected user');
    case "room_invalid":
      return new ApiError(400, "bad_request", `"${target}" is not a valid room name`);
    case "room_limit":
      return new ApiError(409, "conflict", "no more rooms can be created right now");
    case "not_found":
      return new ApiError(404, "not_found", `${target} is not connected`);
    default:
      return new ApiError(503, "unavailable", "the message could not be sent: try again later");
  }
}
