/**
 * Renders docs/screenshot.png: two people chatting, seen by one of them.
 * Run with `deno task screenshot` (needs Debian's chromium).
 */

import { launchBrowser } from "../tests/e2e/_browser.ts";
import { startServerProcess } from "../tests/e2e/_process.ts";

const server = await startServerProcess();
const browser = await launchBrowser();
try {
  const [ann, bob] = await Promise.all([1, 2].map(async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 560 } });
    return await context.newPage();
  }));
  await ann.goto(`${server.httpUrl}/?name=Ann`);
  await bob.goto(`${server.httpUrl}/?name=Bob`);
  await bob.locator("#members button", { hasText: "Ann" }).waitFor();
  const lines: [typeof ann, string][] = [
    [ann, "Morning Bob! Did the deploy go out?"],
    [bob, "It did, ten minutes ago. Metrics look calm."],
    [ann, "!me raises a coffee"],
    [bob, "!join release"],
    [bob, "Notes for the release go here."],
    [bob, "!leave"],
    [bob, "!pm Ann can you review my notes in #release?"],
    [ann, "Sure, after standup."],
  ];
  for (const [page, text] of lines) {
    await page.fill("#input", text);
    await page.press("#input", "Enter");
    await page.waitForTimeout(150);
  }
  await ann.locator("#messages li", { hasText: "after standup" }).waitFor();
  await ann.locator("#send-form input").fill("!j");
  await ann.locator("#hints").filter({ hasText: "!join" }).waitFor();
  await ann.locator("#rooms button", { hasText: "#release" }).waitFor({ timeout: 10_000 });
  await ann.screenshot({ path: new URL("../docs/screenshot.png", import.meta.url).pathname });
} finally {
  await browser.close();
  await server.kill();
}
