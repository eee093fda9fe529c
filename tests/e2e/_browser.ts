/** Headless Chromium (Debian's package) driven by playwright-core, for the browser tests. */

import { type Browser, chromium } from "playwright-core";

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
const INSTALL_HINT = "apt-get install chromium";

/** Flags that keep Chromium from reaching for the network or a sandbox it cannot have here. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function chromiumInstalled(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

/**
 * Whether the browser tests run here. Without Chromium they are skipped with
 * the command that installs it, except in CI, where that is a failure.
 */
export function browserAvailable(): boolean {
  if (chromiumInstalled()) return true;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`Browser tests need ${CHROMIUM_PATH}: run \`${INSTALL_HINT}\``);
  }
  console.warn(`Skipping browser tests: ${CHROMIUM_PATH} is missing (\`${INSTALL_HINT}\`)`);
  return false;
}

/** Starts headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
