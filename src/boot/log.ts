/**
 * Logging setup. Modules log through `getLogger(["chat", ...])`; only
 * `main.ts` calls {@linkcode setupLogging}.
 *
 * @module
 */

import { configure, getConsoleSink, getTextFormatter, jsonLinesFormatter } from "@logtape/logtape";
import type { ServerConfig } from "../config/mod.ts";

/** Sends the `chat` loggers to the console as text lines or JSON lines. */
export async function setupLogging(options: ServerConfig["log"]): Promise<void> {
  // "bare" prints strings unquoted but still escapes control characters, so a
  // user name cannot forge log lines.
  const formatter = options.format === "json"
    ? jsonLinesFormatter
    : getTextFormatter({ value: "bare" });
  await configure({
    sinks: { console: getConsoleSink({ formatter }) },
    loggers: [
      { category: ["chat"], lowestLevel: options.level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}
