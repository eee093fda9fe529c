/**
 * HTTP: the WebSocket upgrade, the health check and a short text page. The
 * handler is a plain function of a `Request`, so it is tested without
 * `Deno.serve`.
 *
 * @module
 */

import type { Chatroom } from "./chatroom.ts";
import { serveChatSocket } from "./connection.ts";

/** Paths where a WebSocket upgrade is accepted. */
const SOCKET_PATHS = new Set(["/", "/ws"]);

const INDEX_PAGE = [
  "Chat server",
  "",
  "Connect a WebSocket client to ws://<this host>/ws (or /), optionally with ?name=<name>.",
  'Send plain text to chat; type "!help" for the commands.',
  "",
].join("\n");

const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" };

function textResponse(body: string, status: number, headers: HeadersInit = {}): Response {
  return new Response(body, { status, headers: { ...TEXT_HEADERS, ...headers } });
}

function upgrade(request: Request, url: URL, chatroom: Chatroom): Response {
  if (!SOCKET_PATHS.has(url.pathname)) return textResponse("Not Found\n", 404);
  let upgraded: ReturnType<typeof Deno.upgradeWebSocket>;
  try {
    upgraded = Deno.upgradeWebSocket(request);
  } catch {
    return textResponse("Bad Request: invalid WebSocket upgrade\n", 400);
  }
  serveChatSocket(upgraded.socket, chatroom, { name: url.searchParams.get("name") ?? undefined });
  return upgraded.response;
}

/** Builds the request handler for `Deno.serve`. */
export function createHandler(chatroom: Chatroom): (request: Request) => Response {
  return (request) => {
    const url = new URL(request.url);
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return upgrade(request, url, chatroom);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return textResponse("Method Not Allowed\n", 405, { allow: "GET, HEAD" });
    }
    switch (url.pathname) {
      case "/":
        return textResponse(INDEX_PAGE, 200);
      case "/healthz":
        return Response.json({ status: "ok", connections: chatroom.size });
      default:
        return textResponse("Not Found\n", 404);
    }
  };
}
