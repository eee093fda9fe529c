import { assertEquals } from "@std/assert";
import { createHandler } from "../src/server.ts";
import { loadStaticFiles } from "../src/static.ts";
import { createTestChatroom, TEST_CONFIG } from "./_fakes.ts";

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
  const get = (path: string, init?: RequestInit) =>
    handler(new Request(`http://chat.test${path}`, init), info);

  await t.step("GET /healthz reports the open connections", async () => {
    const response = get("/healthz");
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "application/json");
    assertEquals(await response.json(), { status: "ok", connections: 0 });
  });

  await t.step("GET / serves the browser client, revalidated by ETag", async () => {
    const response = get("/");
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/html; charset=UTF-8");
    assertEquals(response.headers.get("cache-control"), "no-cache");
    assertEquals((await response.text()).startsWith("<!doctype html>"), true);
    const etag = response.headers.get("etag")!;
    const again = get("/", { headers: { "if-none-match": etag } });
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
      const response = get(path);
      assertEquals([response.status, response.headers.get("content-type")], [200, type]);
      await response.body?.cancel();
    }
  });

  await t.step("unknown paths are 404", async () => {
    const response = get("/nope");
    assertEquals(response.status, 404);
    await response.body?.cancel();
  });

  await t.step("other methods are 405 with Allow", async () => {
    const response = get("/healthz", { method: "POST" });
    assertEquals(response.status, 405);
    assertEquals(response.headers.get("allow"), "GET, HEAD");
    await response.body?.cancel();
  });

  await t.step("a WebSocket upgrade on another path is 404", async () => {
    const response = get("/chat", { headers: { upgrade: "websocket" } });
    assertEquals(response.status, 404);
    await response.body?.cancel();
  });

  await t.step("a malformed upgrade is 400", async () => {
    const response = get("/ws", { headers: { upgrade: "websocket" } });
    assertEquals(response.status, 400);
    await response.body?.cancel();
  });
});
