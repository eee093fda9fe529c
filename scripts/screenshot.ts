/**
 * Renders docs/screenshot.png (a desktop window) and docs/screenshot-phone.png
 * (a phone) of people chatting, one message edited, one removed, one of them typing. Run with
 * `deno task screenshot` (needs Debian's chromium).
 */

import type { Page } from "playwright-core";
import { launchBrowser, typeUntilShown } from "../tests/e2e/_browser.ts";
import { startServerProcess } from "../tests/e2e/_process.ts";

const server = await startServerProcess();
const browser = await launchBrowser();

async function open(name: string, viewport: { width: number; height: number }): Promise<Page> {
  const page = await (await browser.newContext({ viewport })).newPage();
  await page.goto(`${server.httpUrl}/?name=${name}`);
  await page.locator("#me").filter({ hasText: name }).waitFor();
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
  await page.waitForTimeout(150);
}

try {
  const ann = await open("Ann", { width: 1100, height: 620 });
  const bob = await open("Bob", { width: 1100, height: 620 });
  const cleo = await open("Cleo", { width: 390, height: 720 });
  await say(bob, "!join release");
  await say(bob, "Notes for the release go here.");
  await say(bob, "!leave");
  const lines: [Page, string][] = [
    [ann, "Morning! Did the deploy go out?"],
    [bob, "It did, ten minuts ago. Metrics look calm."],
    [cleo, "Nice. I'm on my phone, reading along."],
    [cleo, "and the staging keys are in the vault"],
    [ann, "!me raises a coffee"],
    [bob, "!pm Ann can you review my notes in #release?"],
    [ann, "Sure, after standup."],
  ];
  for (const [page, text] of lines) await say(page, text);
  // Cleo takes back a line that was not for this room: everyone sees that one was removed.
  cleo.once("dialog", (dialog) => dialog.accept());
  await cleo.locator("#messages li.self", { hasText: "staging keys" }).locator("button.delete")
    .focus();
  await cleo.keyboard.press("Enter");
  await ann.locator("#messages li.removed").waitFor();
  // Bob fixes his typo: ArrowUp in the empty box takes his newest message back to it.
  await bob.press("#input", "ArrowUp");
  await say(bob, "It did, ten minutes ago. Metrics look calm.");
  await ann.locator("#messages li", { hasText: "after standup" }).waitFor();
  await ann.locator("#rooms button[data-key='room:release'] .unread").waitFor({ timeout: 10_000 });
  await ann.fill("#input", "!j");
  await ann.locator("#hints").waitFor();
  await ann.screenshot({ path: new URL("../docs/screenshot.png", import.meta.url).pathname });
  await cleo.locator("#messages li", { hasText: "after standup" }).waitFor();
  await typeUntilShown(bob, cleo, "Bob");
  await cleo.screenshot({
    path: new URL("../docs/screenshot-phone.png", import.meta.url).pathname,
  });
} finally {
  await browser.close();
  await server.kill();
}
