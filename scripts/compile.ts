/**
 * `deno task compile`: builds the single binary `dist/chat-server`, with the
 * permissions it runs with decided here, once. `--image` builds it for the
 * container (the Dockerfile): reading only under `/app` (config, the history
 * file, certificates mounted there), `/run/secrets` (Docker's secrets) and
 * `/tmp` (where the runtime may unpack the embedded files), and writing only
 * the history under `/app/data`.
 *
 * `deno compile` downloads the runtime it embeds from dl.deno.land the first
 * time; offline, this says so in one line and leaves no empty `dist/`.
 */

import { parseArgs } from "@std/cli/parse-args";

const USAGE = "Usage: deno task compile [--image]";
const flags = parseArgs(Deno.args, {
  boolean: ["image", "help"],
  unknown: (flag: string) => {
    console.error(`Unknown option ${flag}\n${USAGE}`);
    Deno.exit(2);
  },
});
if (flags.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const OUTPUT = "dist/chat-server";
const permissions = flags.image
  ? ["--allow-read=/app,/run/secrets,/tmp", "--allow-write=/app/data"]
  : ["--allow-read", "--allow-write"];
const args = [
  "compile",
  "--allow-net",
  "--allow-env",
  ...permissions,
  "--include",
  "config",
  "--include",
  "public",
  "--output",
  OUTPUT,
  "src/main.ts",
];

/** Whether `path` exists. */
function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const hadDist = exists("dist");
const { code, stderr } = await new Deno.Command(Deno.execPath(), {
  args,
  stdout: "inherit",
  stderr: "piped",
}).output();
if (code === 0) await Deno.stderr.write(stderr);
else {
  const text = new TextDecoder().decode(stderr);
  const download = /https:\/\/dl\.deno\.land\/\S+/.exec(text);
  if (download !== null && /error sending request|dns error|Connect/i.test(text)) {
    console.error(
      `deno compile needs to download the Deno runtime it embeds (${
        download[0]
      }), and this machine cannot reach it: run it where dl.deno.land is reachable, or build the image elsewhere`,
    );
  } else {
    await Deno.stderr.write(stderr);
  }
  if (!hadDist && exists("dist") && [...Deno.readDirSync("dist")].length === 0) {
    Deno.removeSync("dist");
  }
  Deno.exit(code);
}
