/**
 * The layout of `src/` is the architecture: each folder sits on a floor,
 * and a module imports only from its own folder or from lower floors, so no
 * import runs up and no two folders depend on each other. Files stay small
 * enough to read in one sitting.
 */

import { assertEquals } from "@std/assert";
import { dirname, fromFileUrl, join, relative } from "@std/path";

const SRC = fromFileUrl(new URL("../src/", import.meta.url));

/** Each part of `src/`, from the lowest floor up; parts on one floor do not import each other. */
const FLOORS: readonly (readonly string[])[] = [
  ["text", "net"],
  ["messages.ts", "metrics.ts", "limits.ts"],
  ["config"],
  ["auth"],
  ["vocabulary"],
  ["protocol", "broker"],
  ["chat"],
  ["socket"],
  ["http"],
  ["boot"],
  ["main.ts"],
];

/** The longest a file may grow, in lines. */
const MAX_LINES = 450;

function partOf(path: string): string {
  return relative(SRC, path).split("/")[0];
}

function floorOf(part: string): number {
  const floor = FLOORS.findIndex((parts) => parts.includes(part));
  if (floor < 0) throw new Error(`src/${part} is on no floor: add it to FLOORS`);
  return floor;
}

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sources(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)[^"';]*?from\s*["'](\.{1,2}\/[^"']+)["']/g;

Deno.test("no import runs up a floor, and no file is too long to read", async () => {
  const upward: string[] = [];
  const long: string[] = [];
  for await (const file of sources(SRC)) {
    const text = await Deno.readTextFile(file);
    const lines = text.split("\n").length - 1;
    if (lines > MAX_LINES) long.push(`${relative(SRC, file)} has ${lines} lines`);
    const from = partOf(file);
    for (const [, specifier] of text.matchAll(IMPORT)) {
      const to = partOf(join(dirname(file), specifier));
      if (to === from) continue;
      if (floorOf(to) >= floorOf(from)) {
        upward.push(`${relative(SRC, file)} imports ${specifier}`);
      }
    }
  }
  assertEquals(upward, [], "imports that run up a floor (or across one)");
  assertEquals(long, [], `files over ${MAX_LINES} lines`);
});
