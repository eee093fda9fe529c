/**
 * The server API: `/api/v1/...` for the deployer's backend, with
 * `Authorization: Bearer <key>` (keys from `CHAT_API_KEYS`). JSON in and out;
 * every error is `{"error": {"code", "message"}}` with the fitting status.
 * What it asks the chat to do comes from the request table (each request
 * with an `api` route), read and checked as v2 reads it, and takes the road
 * users' requests take; the rest are reads. See docs/api.md.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { LimitedBytesTransformStream, toBytes } from "@std/streams";
import type { Chatroom } from "../chat/mod.ts";
import type { Metrics } from "../metrics.ts";
import { isOneOf } from "../auth/secrets.ts";
import { readFields } from "../protocol/v2.ts";
import { nameKey } from "../text/names.ts";
import type { ErrorCode, ErrorEvent, MessageEvent } from "../vocabulary/events.ts";
import { REQUEST_TYPES, type RequestType, specOf } from "../vocabulary/requests.ts";

/** Largest request body accepted, in bytes. */
export const MAX_API_BODY_BYTES = 64 * 1024;
/** Longest a request body may take to arrive, in milliseconds: a trickle holds nothing longer. */
export const API_BODY_TIMEOUT_MS = 10_000;
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
  /** Milliseconds a request's body may take to arrive (default {@linkcode API_BODY_TIMEOUT_MS}). */
  readonly bodyTimeout?: number;
}

/** A failed request: its status, stable code and message, and headers for the answer. */
class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The client stopped sending its request: nobody is left to answer. */
class ClientGone extends ApiError {
  /** What reading the body failed with. */
  readonly reason: string;

  constructor(reason: string) {
    super(400, "bad_request", "the body could not be read");
    this.reason = reason;
  }
}

type Json = Record<string, unknown>;

function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return Response.json(body, { status, headers });
}

function errorResponse(error: ApiError): Response {
  const headers = error.status === 401
    ? { ...error.headers, "www-authenticate": "Bearer" }
    : error.headers;
  return json({ error: { code: error.code, message: error.message } }, error.status, headers);
}

/**
 * Reads a JSON object body of at most {@linkcode MAX_API_BODY_BYTES}, all of
 * it within `timeout` milliseconds.
 */
async function readBody(request: Request, timeout: number): Promise<Json> {
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
  let bytes: Uint8Array;
  // Aborting the pipe cancels the body: nothing more of a late one is read or kept.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeout);
  try {
    const limited = new LimitedBytesTransformStream(MAX_API_BODY_BYTES, { error: true });
    bytes = await toBytes(
      (request.body ?? ReadableStream.from([])).pipeThrough(limited, { signal: deadline.signal }),
    );
  } catch (error) {
    if (error instanceof RangeError) throw tooLarge();
    if (deadline.signal.aborted) {
      throw new ApiError(
        408,
        "request_timeout",
        `the body did not arrive within ${timeout / 1000} s`,
        { connection: "close" },
      );
    }
    throw new ClientGone(error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
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

/** Whether a request comes with a body (a disconnect's reason is optional). */
function hasBody(request: Request): boolean {
  const { headers } = request;
  const length = headers.get("content-length");
  if (request.body === null || length === "0") return false;
  return length !== null || headers.has("transfer-encoding") || headers.has("content-type");
}

function tooLarge(): ApiError {
  return new ApiError(413, "too_large", `the body may be at most ${MAX_API_BODY_BYTES} bytes`);
}

function text(body: Json, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value.trim() === "") {
    throw new ApiError(400, "bad_request", `"${key}" must be a non-empty string`);
  }
  return value;
}

/**
 * A kept message as the API shows it: `edited` or `removed` since it was
 * said; or an entry that changed an earlier one (`change`: its `target`,
 * `action` and `author`), where that one is not in the same answer.
 */
function message(event: MessageEvent): Json {
  const { id, seq, from, text, emote, sentAt, change } = event;
  const shown = { id, seq, from, text, emote, sentAt: new Date(sentAt).toISOString() };
  if (change !== undefined) return { ...shown, change };
  if (event.removed) return { ...shown, removed: true };
  return event.edited ? { ...shown, edited: true } : shown;
}

/** What a request's route needs, in words: `{user} in the path (a user's name), "reason" (text)`. */
function describe(type: RequestType): string {
  const { args, api } = specOf(type);
  const needs = Object.entries(args).map(([key, arg]) => {
    const where = api?.path.includes(`:${key}`) ? `{${key}} in the path` : `"${key}"`;
    return `${where} (${arg.expected}${arg.optional ? ", optional" : ""})`;
  });
  if (api?.as === "bot") needs.unshift('"from" (the bot\'s name)');
  return needs.length === 0 ? "no body" : needs.join(", ");
}

/** The status and code of each refusal of the chat. */
const STATUS: Readonly<Record<ErrorCode, readonly [number, string]>> = {
  bad_request: [400, "bad_request"],
  usage: [400, "bad_request"],
  unknown_command: [400, "bad_request"],
  binary_unsupported: [400, "bad_request"],
  room_invalid: [400, "bad_request"],
  unauthorized: [401, "unauthorized"],
  forbidden: [403, "forbidden"],
  user_not_found: [404, "not_found"],
  not_found: [404, "not_found"],
  name_refused: [409, "conflict"],
  room_limit: [409, "conflict"],
  too_many_devices: [409, "conflict"],
  flood: [429, "too_many_requests"],
  busy: [429, "too_many_requests"],
  muted: [429, "too_many_requests"],
  slow: [429, "too_many_requests"],
  internal: [500, "internal"],
  unavailable: [503, "unavailable"],
  too_large: [413, "too_large"],
};

/** The API's answer to a refusal of the chat: its status and code, and the text users read. */
function refusal(error: ErrorEvent): ApiError {
  const [status, code] = STATUS[error.code];
  return new ApiError(status, code, error.text);
}

/** A route: its method, a pattern over the path after `/api/v1`, and its answer. */
interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  readonly pattern: URLPattern;
  handle(request: Request, params: Record<string, string>, url: URL): Promise<Response> | Response;
}

/** The handler of `/api/v1/...`. */
export function createApi(options: ApiOptions): (request: Request) => Promise<Response> {
  const { chatroom, metrics, keys, bodyTimeout = API_BODY_TIMEOUT_MS } = options;
  const { backend, moderation } = chatroom;

  /**
   * The route of a request of the table: its arguments from the body and the
   * path, read as v2 reads them, done as the API's moderator or as the bot
   * the body's `from` names.
   */
  const perform = (type: RequestType): Route["handle"] => async (request, params) => {
    const api = specOf(type).api!;
    const body = hasBody(request) ? await readBody(request, bodyTimeout) : {};
    const decoded = readFields(type, { ...body, ...params });
    if (decoded.type === "invalid") {
      const { problem } = decoded;
      const message = problem.code === "bad_request"
        ? problem.reason
        : `${api.method} ${api.path} needs ${describe(type)}`;
      throw new ApiError(400, "bad_request", message);
    }
    const bot = api.as === "bot" ? { name: text(body, "from"), room: params.room } : undefined;
    const outcome = await chatroom.perform(decoded, bot);
    if (!outcome.ok) throw refusal(outcome.error);
    if (api.as === "moderator") return json({ ok: true, what: outcome.done }, api.status);
    const { room, to } = params;
    return json({ id: outcome.id, ...(room === undefined ? { to } : { room }) }, api.status);
  };
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
    route("GET", "/bans", () =>
      json({
        // An address held with a name is listed with it.
        bans: moderation.bans().filter((ban) => ban.for === undefined).map((ban) => {
          const address = ban.address ??
            moderation.bans().find((held) =>
              ban.name !== undefined && held.for === nameKey(ban.name)
            )?.address;
          return {
            ...(ban.name === undefined ? {} : { name: ban.name }),
            ...(address === undefined ? {} : { address }),
            until: new Date(ban.until).toISOString(),
            reason: ban.reason,
            by: ban.by,
          };
        }),
      })),
    ...REQUEST_TYPES.flatMap((type) => {
      const api = specOf(type).api;
      return api === undefined ? [] : [route(api.method, api.path, perform(type))];
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
      if (error instanceof ClientGone) {
        log.debug("The client of {method} {path} went away while sending the body: {reason}", {
          method: request.method,
          path: new URL(request.url).pathname,
          reason: error.reason,
        });
      }
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
