/** The browser client in headless Chromium: two people chatting across rooms and restarts. */

import { assertEquals } from "@std/assert";
import type { Page } from "playwright-core";
import { browserAvailable, launchBrowser } from "./_browser.ts";
import { startServerProcess } from "./_process.ts";

const WAIT = { timeout: 10_000 };

/** The message list item holding `text`, once it is there. */
async function message(page: Page, text: string, classes = ""): Promise<string> {
  const item = page.locator(`#messages li${classes}`, { hasText: text }).last();
  await item.waitFor(WAIT);
  return await item.innerText();
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

/** Waits until the element at `selector` shows `expected` (a regular expression, or exactly this text). */
async function textOf(page: Page, selector: string, expected: string | RegExp): Promise<void> {
  const pattern = typeof expected === "string"
    ? new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`)
    : expected;
  await page.locator(selector).filter({ hasText: pattern }).waitFor(WAIT);
}

Deno.test({
  name: "browser: two people chat across rooms, privately, after a reload and a restart",
  ignore: !browserAvailable(),
  // Playwright keeps its own timers and pipes alive between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    let server = await startServerProcess();
    const port = Number(new URL(server.httpUrl).port);
    const browser = await launchBrowser();
    try {
      const ann = await (await browser.newContext()).newPage();
      const bob = await (await browser.newContext()).newPage();
      await ann.goto(`${server.httpUrl}/?name=Ann`);
      await bob.goto(`${server.httpUrl}/?name=Bob`);
      await textOf(ann, "#me", "Ann");
      await textOf(bob, "#me", "Bob");

      await t.step("the page is labelled for screen readers", async () => {
        assertEquals(await ann.getAttribute("#messages", "aria-live"), "polite");
        assertEquals(await ann.getAttribute("#status", "role"), "status");
        assertEquals(await ann.locator("label[for=input]").count(), 1);
      });

      await t.step("messages reach the other page with sender and colour by origin", async () => {
        await say(ann, "hello from Ann");
        assertEquals((await message(bob, "hello from Ann", ".message")).includes("Ann:"), true);
        await message(ann, "hello from Ann", ".message.self");
      });

      await t.step("keyboard only: skip link, type, Enter", async () => {
        await bob.keyboard.press("Tab");
        await bob.keyboard.press("Enter");
        await bob.keyboard.type("typed without a mouse");
        await bob.keyboard.press("Enter");
        await message(ann, "typed without a mouse", ".message");
      });

      await t.step("command hints appear as a command is typed", async () => {
        await ann.fill("#input", "!jo");
        await textOf(ann, "#hints", "!join <room>: moves you to a room (created if new)");
        await ann.fill("#input", "");
      });

      await t.step("switching rooms, with unread counts for the others", async () => {
        await ann.fill("#new-room", "games");
        await ann.press("#new-room", "Enter");
        await textOf(ann, "#current-room", "games");
        await say(ann, "first in games");
        const games = bob.locator("#rooms button", { hasText: "#games" });
        await games.waitFor(WAIT);
        await say(ann, "second in games");
        await textOf(bob, "#rooms button:has-text('#games') .unread", "1");
        await games.click();
        await textOf(bob, "#current-room", "games");
        await message(bob, "first in games", ".history");
        await message(bob, "second in games", ".history");
        assertEquals(await bob.locator("#rooms .unread").count(), 0);
      });

      await t.step("a private message, started from the member list", async () => {
        await bob.locator("#members button", { hasText: "Ann" }).click();
        assertEquals(await bob.inputValue("#input"), "!pm Ann ");
        await bob.keyboard.type("just between us");
        await bob.keyboard.press("Enter");
        assertEquals(
          (await message(ann, "just between us", ".private")).includes("from Bob"),
          true,
        );
        await message(bob, "just between us", ".private");
      });

      await t.step("after a reload the session is back, and nobody saw it leave", async () => {
        await ann.reload();
        await textOf(ann, "#current-room", "games");
        await textOf(ann, "#me", "Ann");
        await message(ann, "second in games", ".history");
        await say(bob, "seen after the reload");
        await message(ann, "seen after the reload", ".message");
        assertEquals(
          await bob.locator("#messages li", { hasText: /Ann has (left|disconnected)/ }).count(),
          0,
        );
      });

      await t.step("both pages recover after the server restarts", async () => {
        server.child.kill("SIGTERM");
        await server.child.status;
        await textOf(ann, "#status", /^Disconnected/);
        server = await startServerProcess({ port });
        await textOf(ann, "#status", "Connected");
        await textOf(bob, "#status", "Connected");
        await textOf(ann, "#current-room", "games");
        // The restarted server kept no history: the page says what may be missing.
        await message(ann, "Messages of games may be missing", ".gap");
        await say(ann, "back after the restart");
        await message(bob, "back after the restart", ".message");
      });
    } finally {
      await browser.close();
      await server.kill();
    }
  },
});
