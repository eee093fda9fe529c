import { assertEquals } from "@std/assert";
import { isHostAllowed, isOriginAllowed } from "../../src/http/admission.ts";
import { createHandler } from "../../src/http/handler.ts";
import { loadStaticFiles } from "../../src/http/static.ts";
import { createTestChatroom, TEST_CONFIG } from "../_fakes.ts";

Deno.test("HTTP routes", async (t) => {
  const chatroom = createTestChatroom();
  const handler = createHandler({
    chatroom,
    limits: TEST_CONFIG.server.limits,
    staticFiles: await loadStaticFiles(),
  });
  const info = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
    completed: Promise.resolve(),
  } as const;
  const get = async (path: string, init?: RequestInit) =>
    await handler(new Request(`http://chat.test${path}`, init), info);

  await t.step("GET /healthz reports the open connections", async () => {
    const response = await get("/healthz");
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "application/json");
    assertEquals(await response.json(), { status: "ok", connections: 0 });
  });

  await t.step("GET / serves the browser client, revalidated by ETag", async () => {
    const response = await get("/");
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/html; charset=UTF-8");
    assertEquals(response.headers.get("cache-control"), "no-cache");
    assertEquals((await response.text()).startsWith("<!doctype html>"), true);
    const etag = response.headers.get("etag")!;
    const again = await get("/", { headers: { "if-none-match": etag } });
    assertEquals(again.status, 304);
    assertEquals(again.body, null);
  });

  await t.step("scripts and styles carry their content types", async () => {
    for (
      const [path, type] of [
        ["/app.js", "text/javascript; charset=UTF-8"],
        ["/style.css", "text/css; charset=UTF-8"],
      ]
    ) {
      const response = await get(path);
      assertEquals([response.status, response.headers.get("content-type")], [200, type]);
      await response.body?.cancel();
    }
  });

  await t.step("HEAD answers with the length GET sends", async () => {
    const head = await get("/", { method: "HEAD" });
    const body = await (await get("/")).arrayBuffer();
    assertEquals([head.status, head.headers.get("content-length")], [200, String(body.byteLength)]);
    assertEquals(head.body, null);
  });

  await t.step("the favicon is served, and the page links it", async () => {
    const icon = await get("/favicon.svg");
    assertEquals([icon.status, icon.headers.get("content-type")], [200, "image/svg+xml"]);
    await icon.body?.cancel();
    const page = await (await get("/")).text();
    assertEquals(page.includes('<link rel="icon" href="/favicon.svg"'), true);
  });

  await t.step("unknown paths are 404", async () => {
    const response = await get("/nope");
    assertEquals(response.status, 404);
    await response.body?.cancel();
  });

  await t.step("other methods are 405 with Allow", async () => {
    const response = await get("/healthz", { method: "POST" });
    assertEquals(response.status, 405);
    assertEquals(response.headers.get("allow"), "GET, HEAD");
    await response.body?.cancel();
  });

  await t.step("a WebSocket upgrade on another path is 404", async () => {
    const response = await get("/chat", { headers: { upgrade: "websocket" } });
    assertEquals(response.status, 404);
    await response.body?.cancel();
  });

  await t.step("a malformed upgrade is 400", async () => {
    const response = await get("/ws", { headers: { upgrade: "websocket" } });
    assertEquals(response.status, 400);
    await response.body?.cancel();
  });
});

Deno.test("isHostAllowed answers only the listed names, and loopback", () => {
  const listed = ["chat.example.com"];
  const cases: [string | null, readonly string[], boolean][] = [
    ["chat.example.com", listed, true],
    ["CHAT.example.com:443", listed, true],
    ["evil.net", listed, false],
    ["chat.example.com.evil.net", listed, false],
    [null, listed, false],
    ["localhost:8080", listed, true],
    ["127.0.0.1:8080", listed, true],
    ["[::1]:8080", listed, true],
    ["evil.net", ["*"], true],
    [null, ["*"], true],
  ];
  for (const [host, allowed, expected] of cases) {
    assertEquals(isHostAllowed(host, allowed), expected, `${host} against ${allowed}`);
  }
});

Deno.test("isOriginAllowed: listed origins, this host's own pages, and non-browsers", () => {
  const listed = ["https://chat.example.com"];
  const cases: [string | null, string | null, boolean][] = [
    [null, "chat.example.com", true],
    ["https://chat.example.com", "chat.example.com", true],
    ["https://chat.example.com", "other.example.com", true],
    ["http://127.0.0.1:8080", "127.0.0.1:8080", true],
    ["https://evil.net", "chat.example.com", false],
    ["not a url", "chat.example.com", false],
    ["https://evil.net", null, false],
  ];
  for (const [origin, host, expected] of cases) {
    assertEquals(isOriginAllowed(origin, host, listed), expected, `${origin} on ${host}`);
  }
});
