import { assertEquals } from "@std/assert";
import { createHandler } from "../src/server.ts";
import { createTestChatroom, TEST_CONFIG } from "./_fakes.ts";

Deno.test("HTTP routes", async (t) => {
  const chatroom = createTestChatroom();
  const handler = createHandler({ chatroom, limits: TEST_CONFIG.server.limits });
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

  await t.step("GET / answers with a short text page", async () => {
    const response = get("/");
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assertEquals((await response.text()).startsWith("Chat server\n"), true);
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
