/** Headless Chromium (Debian's package) driven by playwright-core, for the browser tests. */

import { type Browser, chromium, type Page } from "playwright-core";
import { type ConfigChanges, testConfigDir } from "./_config.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

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

export const WAIT = { timeout: 10_000 };
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 700 };

/** The message list item holding `text`, once it is there. */
export async function message(
  page: Page,
  text: string,
  classes = "",
  list = "#messages",
): Promise<string> {
  const item = page.locator(`${list} li${classes}`, { hasText: text }).last();
  await item.waitFor(WAIT);
  return await item.innerText();
}

export async function say(page: Page, text: string): Promise<void> {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

/** Waits until the element at `selector` shows `expected` (a regular expression, or exactly this text). */
export async function textOf(
  page: Page,
  selector: string,
  expected: string | RegExp,
): Promise<void> {
  const pattern = typeof expected === "string"
    ? new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`)
    : expected;
  await page.locator(selector).filter({ hasText: pattern }).first().waitFor(WAIT);
}

/**
 * Types a draft on `typist`'s page, a little more each time, until
 * `watcher`'s page shows that they are typing: a page tells the room at most
 * every 2 s, and the last time may have been a moment ago.
 */
export async function typeUntilShown(typist: Page, watcher: Page, name: string): Promise<void> {
  const shown = watcher.locator("#typing").filter({ hasText: `${name} is typing…` });
  let draft = "a draft";
  for (let tries = 0; tries < 20 && !(await shown.isVisible()); tries++) {
    await typist.fill("#input", draft += ".");
    await shown.waitFor({ timeout: 500 }).catch(() => {});
  }
  await shown.waitFor(WAIT);
}

export async function open(
  browser: Browser,
  server: ServerProcess,
  query: string,
  viewport = DESKTOP,
): Promise<Page> {
  const page = await (await browser.newContext({ viewport })).newPage();
  await page.goto(`${server.httpUrl}/${query}`);
  await page.locator("#me").filter({ hasNotText: "…" }).waitFor(WAIT);
  return page;
}

/**
 * A browser test against a server of its own (started with `env`, and with
 * the `config` changes to the test environment when given); the server and
 * the browser are stopped after it, whatever happens.
 */
export function browserTest(
  name: string,
  body: (t: Deno.TestContext, browser: Browser, server: ServerProcess) => Promise<void>,
  env?: Record<string, string>,
  config?: ConfigChanges,
): void {
  Deno.test({
    name,
    ignore: !browserAvailable(),
    // Playwright keeps its own timers and pipes alive between steps.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const configDir = config === undefined ? undefined : await testConfigDir(config);
      let server: ServerProcess | undefined;
      let browser: Browser | undefined;
      try {
        server = await startServerProcess({
          env: configDir === undefined ? env : { ...env, CHAT_CONFIG_DIR: configDir },
        });
        browser = await launchBrowser();
        await body(t, browser, server);
      } finally {
        await browser?.close();
        await server?.kill();
        if (configDir !== undefined) await Deno.remove(configDir, { recursive: true });
      }
    },
  });
}
