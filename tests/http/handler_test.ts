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

  await t.step(
    "every page and file carries a Content-Security-Policy and may not be framed",
    async () => {
      const policy = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws://chat.test wss://chat.test",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
      ].join("; ");
      const etag = (await get("/")).headers.get("etag")!;
      const answers = [
        await get("/"),
        await get("/app.js"),
        await get("/style.css"),
        await get("/favicon.svg"),
        await get("/", { method: "HEAD" }),
        await get("/", { headers: { "if-none-match": etag } }),
      ];
      for (const response of answers) {
        await response.body?.cancel();
        assertEquals(
          [
            response.headers.get("content-security-policy"),
            response.headers.get("x-frame-options"),
            response.headers.get("x-content-type-options"),
          ],
          [policy, "DENY", "nosniff"],
        );
      }
      const onAPort = await handler(new Request("http://127.0.0.1:8080/"), info);
      await onAPort.body?.cancel();
      assertEquals(
        onAPort.headers.get("content-security-policy")?.includes(
          "; connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;",
        ),
        true,
      );
    },
  );

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

Deno.test("limits.frame_ancestors lets the listed sites frame the pages", async () => {
  const handler = createHandler({
    chatroom: createTestChatroom(),
    limits: {
      ...TEST_CONFIG.server.limits,
      frameAncestors: ["https://app.example", "https://*.example.org"],
    },
    staticFiles: await loadStaticFiles(),
  });
  const response = await handler(new Request("http://chat.test/"), {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
    completed: Promise.resolve(),
  });
  await response.body?.cancel();
  const policy = response.headers.get("content-security-policy") ?? "";
  assertEquals(
    policy.split("; ").at(-1),
    "frame-ancestors https://app.example https://*.example.org",
  );
  // An old browser would take DENY over the list: it is left out.
  assertEquals(response.headers.get("x-frame-options"), null);
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
