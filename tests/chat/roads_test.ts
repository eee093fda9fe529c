/**
 * One road for every request: the same request sent as a `!` command, as a
 * v2 request and (where it has a route) through the server API comes to
 * the same outcome, whatever the roads each show of it.
 */

import { assertEquals } from "@std/assert";
import { createMetrics } from "../../src/metrics.ts";
import { createApi } from "../../src/http/api.ts";
import { decodeV1Frame } from "../../src/protocol/v1.ts";
import { decodeV2Frame } from "../../src/protocol/v2.ts";
import type { ChatEvent, ErrorEvent } from "../../src/vocabulary/events.ts";
import { connect, createTestChatroom, FakeSink, TEST_CHAT_CONFIG } from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";
const KEY = "a-key-of-at-least-sixteen";

/** How a request ended, as every road can tell it. */
type Verdict = "done" | "shown" | "bad" | "not_found" | "forbidden" | "conflict";

/** The verdict of a user road: the answer the moderator was sent (the only one, as asserted). */
async function fromEvents(sink: FakeSink): Promise<Verdict> {
  const isAnswer = (event: ChatEvent) =>
    event.type === "error" || event.type === "system" || event.type === "help";
  const last = await sink.waitFor(isAnswer, "answer");
  assertEquals(sink.events.filter(isAnswer).length, 1, "one answer");
  sink.take();
  if (last.type !== "error") return last.body.startsWith("Done:") ? "done" : "shown";
  switch ((last as ErrorEvent).code) {
    case "usage":
    case "bad_request":
    case "room_invalid":
    case "unknown_command":
      return "bad";
    case "user_not_found":
      return "not_found";
    case "forbidden":
      return "forbidden";
    default:
      return "conflict";
  }
}

function fromStatus(status: number): Verdict {
  if (status < 300) return "done";
  return ({ 400: "bad", 403: "forbidden", 404: "not_found" } as const)[status as 400] ??
    "conflict";
}

/** A request spelled for each road it has. */
interface Spelling {
  readonly text: string;
  readonly v2: Record<string, unknown>;
  readonly api?: { method: string; path: string; body?: Record<string, unknown> };
}

/** One request, its outcome, and what undoes it (so that each road starts alike). */
interface Case extends Spelling {
  readonly what: string;
  readonly verdict: Verdict;
  readonly undo?: Spelling;
}

const CASES: readonly Case[] = [
  {
    what: "a kick with no user",
    text: "!kick",
    v2: { type: "kick", user: "" },
    verdict: "bad",
  },
  {
    what: "a kick of nobody",
    text: "!kick Nobody",
    v2: { type: "kick", user: "Nobody" },
    api: { method: "POST", path: "/users/Nobody/disconnect" },
    verdict: "not_found",
  },
  {
    what: "a plain ban of nobody",
    text: "!ban 999.1.1.1 1h",
    v2: { type: "ban", target: "999.1.1.1", seconds: 3600 },
    api: { method: "POST", path: "/bans", body: { target: "999.1.1.1", seconds: 3600 } },
    verdict: "not_found",
  },
  {
    what: "a ban of no address",
    text: "!ban addr:999.1.1.1 1h",
    v2: { type: "ban", target: "addr:999.1.1.1", seconds: 3600 },
    api: { method: "POST", path: "/bans", body: { target: "addr:999.1.1.1", seconds: 3600 } },
    verdict: "bad",
  },
  {
    what: "a ban of a reserved name",
    text: "!ban name:SERVER 1h",
    v2: { type: "ban", target: "name:SERVER", seconds: 3600 },
    api: { method: "POST", path: "/bans", body: { target: "name:SERVER", seconds: 3600 } },
    verdict: "bad",
  },
  {
    what: "a ban over a year",
    text: "!ban name:Zed 400d",
    v2: { type: "ban", target: "name:Zed", seconds: 400 * 86_400 },
    api: { method: "POST", path: "/bans", body: { target: "name:Zed", seconds: 400 * 86_400 } },
    verdict: "bad",
  },
  {
    what: "lifting a ban nobody has",
    text: "!unban Zed",
    v2: { type: "unban", target: "Zed" },
    api: { method: "DELETE", path: "/bans/Zed" },
    verdict: "not_found",
  },
  {
    what: "a ban of a network, and its lifting",
    text: "!ban addr:10.9.0.0/16 1h",
    v2: { type: "ban", target: "addr:10.9.0.0/16", seconds: 3600 },
    api: { method: "POST", path: "/bans", body: { target: "addr:10.9.0.0/16", seconds: 3600 } },
    verdict: "done",
    undo: {
      text: "!unban addr:10.9.0.0/16",
      v2: { type: "unban", target: "addr:10.9.0.0/16" },
      api: { method: "DELETE", path: "/bans/addr:10.9.0.0%2F16" },
    },
  },
  {
    what: "a private message to nobody",
    text: "!pm Nobody hi",
    v2: { type: "pm", to: "Nobody", text: "hi" },
    api: { method: "POST", path: "/users/Nobody/messages", body: { from: "Bot", text: "hi" } },
    verdict: "not_found",
  },
  {
    what: "a mute over a year",
    text: "!mute Bob 400d",
    v2: { type: "mute", user: "Bob", seconds: 400 * 86_400 },
    verdict: "bad",
  },
  {
    what: "slow mode over an hour",
    text: "!slow 3601",
    v2: { type: "slow", seconds: 3601 },
    verdict: "bad",
  },
  {
    what: "a join with no room",
    text: "!join",
    v2: { type: "join", room: " " },
    verdict: "bad",
  },
  {
    what: "history of no messages",
    text: "!history 0",
    v2: { type: "history", count: 0 },
    verdict: "bad",
  },
  {
    what: "help on no command",
    text: "!help dance",
    v2: { type: "help", command: "dance" },
    verdict: "bad",
  },
  {
    what: "the topic, read",
    text: "!topic",
    v2: { type: "topic" },
    verdict: "shown",
  },
  {
    what: "a mute of a user, and its lifting",
    text: "!mute Bob 10m",
    v2: { type: "mute", user: "Bob", seconds: 600 },
    verdict: "done",
    undo: { text: "!unmute Bob", v2: { type: "unmute", user: "Bob" } },
  },
];

Deno.test("a request comes to one outcome by every road", async (t) => {
  const chatroom = createTestChatroom({
    config: { ...TEST_CHAT_CONFIG, flood: { ...TEST_CHAT_CONFIG.flood, rate: 1000, burst: 1000 } },
    auth: { tokenMode: false, expiryWarning: 60, operatorPassword: PASSWORD },
  });
  const modSink = new FakeSink();
  const mod = connect(chatroom, modSink, { name: "Mod" });
  connect(chatroom, new FakeSink(), { name: "Bob" });
  chatroom.handle(mod, { type: "op", password: PASSWORD });
  modSink.events.splice(0);
  modSink.own.splice(0);
  const api = createApi({ chatroom, metrics: createMetrics(), keys: [KEY], health: () => ({}) });
  const roads = {
    async text(spelling: Spelling): Promise<Verdict> {
      chatroom.handle(mod, decodeV1Frame(spelling.text));
      return await fromEvents(modSink);
    },
    async v2(spelling: Spelling): Promise<Verdict> {
      const [input] = decodeV2Frame(JSON.stringify(spelling.v2));
      if (input.kind === "request") chatroom.handle(mod, input.request);
      return await fromEvents(modSink);
    },
    async api(spelling: Spelling): Promise<Verdict> {
      const call = spelling.api!;
      const response = await api(
        new Request(`http://127.0.0.1/api/v1${call.path}`, {
          method: call.method,
          headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          body: call.body === undefined ? undefined : JSON.stringify(call.body),
        }),
      );
      await response.body?.cancel();
      return fromStatus(response.status);
    },
  };

  for (const spelled of CASES) {
    await t.step(spelled.what, async () => {
      for (const road of ["text", "v2", "api"] as const) {
        if (road === "api" && spelled.api === undefined) continue;
        assertEquals(await roads[road](spelled), spelled.verdict, `${road}: ${spelled.text}`);
        if (spelled.undo !== undefined) {
          assertEquals(await roads[road](spelled.undo), "done", `${road}: ${spelled.undo.text}`);
        }
      }
    });
  }
});
