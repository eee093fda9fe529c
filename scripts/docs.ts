/**
 * The README's command tables, derived from the request table: `deno task
 * docs` writes them between their markers, and a test fails when the README
 * holds anything else, so the docs cannot drift from the code.
 *
 * @module
 */

import { fromFileUrl } from "@std/path";
import { COMMANDS } from "../src/vocabulary/commands.ts";
import { specOf } from "../src/vocabulary/requests.ts";

/** Where the README keeps each table. */
export const README: string = fromFileUrl(new URL("../README.md", import.meta.url));

/** A markdown table with its columns padded as `deno fmt` pads them. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [header, ...rows].map((row) => row.map((cell) => cell.replaceAll("|", "\\|")));
  const widths = header.map((_, column) =>
    Math.max(3, ...cells.map((row) => [...row[column]].length))
  );
  const line = (row: readonly string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(" | ")} |`;
  const rule = `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}

/** The JSON a v2 client sends for a request, its fields named. */
function v2Shape(type: string): string {
  const fields = Object.keys(specOf(type as never).args).map((key) => `,"${key}"`).join("");
  return `\`{"type":"${type}"${fields}}\``;
}

/** The table of one section of the README: the chat's commands, or moderation's. */
export function commandTable(section: "chat" | "moderation"): string {
  const commands = COMMANDS.filter((command) => specOf(command.type).section === section);
  if (section === "chat") {
    return table(
      ["command", "what it does"],
      commands.map((command) => [`\`${command.usage}\``, specOf(command.type).description]),
    );
  }
  return table(
    ["command", "v2 request", "what it does"],
    commands.map((
      command,
    ) => [`\`${command.usage}\``, v2Shape(command.type), specOf(command.type).description]),
  );
}

const MARKER = /<!-- commands: (chat|moderation) -->[\s\S]*?<!-- \/commands -->/g;

/** `readme` with every table between its markers written afresh. */
export function withTables(readme: string): string {
  return readme.replace(
    MARKER,
    (_, section: "chat" | "moderation") =>
      `<!-- commands: ${section} -->\n\n${commandTable(section)}\n\n<!-- /commands -->`,
  );
}

if (import.meta.main) {
  const readme = await Deno.readTextFile(README);
  await Deno.writeTextFile(README, withTables(readme));
  console.log("README.md: command tables written from src/vocabulary/requests.ts");
}
