/**
 * The browser client as people live in it, on a phone and a desktop: a chat
 * that reads like one (initials, runs of messages, days, the unread line,
 * a way back to the newest), drawers that hold the focus, badges that come
 * at once, a conversation that survives a reload, and sign-in words for
 * people rather than for programs.
 */

import { assert, assertEquals } from "@std/assert";
import { SignJWT } from "jose";
import type { Browser } from "playwright-core";
import {
  browserAvailable,
  browserTest,
  DESKTOP,
  launchBrowser,
  message,
  open,
  PHONE,
  say,
  textOf,
  typeUntilShown,
  WAIT,
} from "./_browser.ts";
import { startCluster } from "./_cluster.ts";
import { natsAvailable } from "./_nats.ts";

const TOKEN_SECRET = "a-browser-test-secret-of-at-least-32-characters";

/** A token for `name` signed with {@linkcode TOKEN_SECRET}, valid for an hour. */
function tokenFor(name: string): Promise<string> {
  return new SignJWT({ sub: name })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(TOKEN_SECRET));
}

browserTest(
  "browser: the client reads like a chat and holds up on a phone",
  async (t, browser, server) => {
    const ann = await open(browser, server, "?name=Ann", DESKTOP);
    const bob = await open(browser, server, "?name=Bob", PHONE);

    await t.step("a run of messages shows its sender's initials and name once", async () => {
      for (const text of ["first of a run", "second of a run", "third of a run"]) {
        await say(ann, text);
        await message(bob, text, ".message");
      }
      const runs = await bob.evaluate(`[...document.querySelectorAll("#messages li.message")]
      .map((item) => ({
        avatar: item.querySelector(".avatar")?.textContent,
        continued: item.classList.contains("continued"),
        from: item.querySelector(".from")?.textContent,
      }))`);
      assertEquals(runs, [
        { avatar: "An", continued: false, from: "Ann:" },
        { avatar: "An", continued: true, from: "Ann:" },
        { avatar: "An", continued: true, from: "Ann:" },
      ]);
      // The name stays for screen readers, out of sight: a clipped box of one pixel.
      const name = await bob.locator("#messages li.continued .from").first().boundingBox();
      assert(name !== null && name.width <= 1 && name.height <= 1, JSON.stringify(name));
    });

    await t.step("the list starts with the day it shows", async () => {
      assertEquals(await bob.locator("#messages li.day").first().innerText(), "Today");
    });

    await t.step("scrolled up, a button jumps back to the newest message", async () => {
      // Long lines, so that a few fill the phone's pane.
      for (let i = 0; i < 5; i++) await say(ann, `filler ${i} ${"words ".repeat(150)}`);
      await message(bob, "filler 4", ".message");
      await bob.evaluate(`document.getElementById("messages").scrollTop = 0`);
      await bob.locator("#jump").waitFor({ state: "visible", ...WAIT });
      await say(ann, "while scrolled up");
      await message(bob, "while scrolled up", ".message");
      // Reading older lines is not interrupted by a new one.
      assertEquals(await bob.evaluate(`document.getElementById("messages").scrollTop`), 0);
      await bob.click("#jump");
      await bob.locator("#jump").waitFor({ state: "hidden", ...WAIT });
      assert(await bob.locator("#messages li", { hasText: "while scrolled up" }).isVisible());
    });

    await t.step("what came while the page was out of sight starts under a line", async () => {
      await bob.evaluate(
        `Object.defineProperty(document, "hidden", { value: true, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"))`,
      );
      await say(ann, "while you were away");
      await message(bob, "while you were away", ".message");
      await bob.evaluate(
        `Object.defineProperty(document, "hidden", { value: false, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"))`,
      );
      const order = await bob.evaluate(`[...document.querySelectorAll("#messages li")].slice(-2)
        .map((item) => item.className)`);
      assertEquals(order, ["new-marker", "message"]);
      assertEquals(await bob.locator("#messages li.new-marker").innerText(), "New messages");
    });

    await t.step("a private message's badge is on the Rooms button at once", async () => {
      await say(ann, "!pm Bob psst");
      await textOf(bob, "#rooms-toggle-unread", "1");
    });

    await t.step("the rooms drawer holds the focus, and Escape gives it back", async () => {
      await bob.click("#rooms-toggle");
      await bob.locator("#rooms-panel").waitFor({ state: "visible", ...WAIT });
      const focused = () =>
        bob.evaluate(`document.getElementById("rooms-panel").contains(document.activeElement)`);
      for (let i = 0; i < 12; i++) {
        await bob.keyboard.press(i % 3 === 2 ? "Shift+Tab" : "Tab");
        assertEquals(await focused(), true, `focus left the drawer after ${i + 1} presses`);
      }
      await bob.keyboard.press("Escape");
      assertEquals(await bob.evaluate(`document.activeElement?.id`), "rooms-toggle");
      // A click on the dimmed page closes it too, and the focus goes back the same way.
      await bob.click("#rooms-toggle");
      await bob.click(".scrim", { position: { x: PHONE.width - 10, y: 300 } });
      assertEquals(await bob.evaluate(`document.activeElement?.id`), "rooms-toggle");
    });

    await t.step("who is typing shows under the messages until they send", async () => {
      await typeUntilShown(ann, bob, "Ann");
      assertEquals(await ann.locator("#typing").innerText(), "", "not to the one typing");
      await ann.fill("#input", "I am writing something");
      await ann.press("#input", "Enter");
      await message(bob, "I am writing something", ".message");
      assertEquals(await bob.locator("#typing").innerText(), "");
    });

    await t.step("your own message: edited with the pointer or ArrowUp, deleted", async () => {
      await say(ann, "a message with a tpyo");
      const mine = ann.locator("#messages li.self", { hasText: "tpyo" });
      await mine.hover();
      await mine.locator("button.edit").click();
      assertEquals(await ann.inputValue("#input"), "a message with a tpyo");
      await ann.fill("#input", "a message with a typo");
      await ann.press("#input", "Enter");
      const edited = bob.locator("#messages li.message", { hasText: "a message with a typo" });
      await edited.locator(".edited-mark").waitFor(WAIT);
      assertEquals(await edited.locator(".text").innerText(), "a message with a typo");

      // The keyboard: ArrowUp in the empty box takes the newest of your messages back to it.
      await say(ann, "soon gone");
      await message(bob, "soon gone", ".message");
      // The newest of Ann's own once her page has it back, not only Bob's.
      await ann.locator("#messages li.self", { hasText: "soon gone" }).waitFor(WAIT);
      await ann.press("#input", "ArrowUp");
      assertEquals(await ann.inputValue("#input"), "soon gone");
      await ann.press("#input", "Escape");
      assertEquals(await ann.inputValue("#input"), "");
      ann.once("dialog", (dialog) => dialog.accept());
      await ann.locator("#messages li.self", { hasText: "soon gone" }).locator("button.delete")
        .focus();
      await ann.keyboard.press("Enter");
      await textOf(bob, "#messages li.removed .text", "message removed");
      assertEquals(await ann.locator("#messages li.removed .actions").count(), 0);
    });

    await t.step("a reload in a private conversation comes back to it", async () => {
      await bob.click("#members-toggle");
      await bob.locator("#members button", { hasText: "Ann" }).click();
      await textOf(bob, "#current-room", "Private with Ann");
      await bob.reload();
      await textOf(bob, "#current-room", "Private with Ann");
      await message(bob, "psst", "", "#conversation");
    });

    await t.step(
      "the phone shows the whole placeholder, and a heading for screen readers",
      async () => {
        await bob.click("#rooms-toggle");
        await bob.click("#rooms button[data-key='room:lobby']");
        await textOf(bob, "#current-room", "#lobby");
        // The placeholder's width in the input's font, against the room the input gives it.
        const fits = await bob.evaluate(`(() => {
      const input = document.getElementById("input");
      const style = getComputedStyle(input);
      const probe = document.createElement("span");
      probe.style.font = style.font;
      probe.style.position = "absolute";
      probe.textContent = input.placeholder;
      document.body.append(probe);
      const width = probe.getBoundingClientRect().width;
      probe.remove();
      return width <= input.clientWidth - parseFloat(style.paddingLeft) -
        parseFloat(style.paddingRight);
    })()`);
        assert(fits, "the placeholder is cut on a phone");
        assertEquals(await bob.locator("h1").count(), 1);
        assertEquals(
          await bob.evaluate(`getComputedStyle(document.querySelector("h1")).display`),
          "block",
        );
      },
    );

    await t.step("offline, the waiting line and its note are in sight", async () => {
      server.child.kill("SIGTERM");
      await server.child.status;
      await textOf(bob, "#status", /^Disconnected/);
      await say(bob, "typed on the train");
      await textOf(
        bob,
        "#send-note",
        "Offline: 1 message will be sent when the connection is back.",
      );
      const [line, pane] = await Promise.all(
        ["#messages li.pending", "#messages"].map((selector) =>
          bob.locator(selector).boundingBox()
        ),
      );
      if (line === null || pane === null) throw new Error("the waiting line is not on the page");
      assert(
        line.y + line.height <= pane.y + pane.height + 1,
        `the waiting line ends at ${line.y + line.height}, below the pane's ${
          pane.y + pane.height
        }`,
      );
    });
  },
  undefined,
  // One page says a dozen things within a second or two, as no person types: flood control,
  // whose bucket both pages share (one address), would drop some of them.
  { floodOff: true },
);

browserTest(
  "browser: token mode speaks to people, not to programs",
  async (t, browser, server) => {
    const page = await (await browser.newContext({ viewport: PHONE })).newPage();
    await t.step("without a token: a sign-in message and no placeholder name", async () => {
      await page.goto(`${server.httpUrl}/`);
      await message(
        page,
        "This chat needs you to sign in: open it from the application that signs you in.",
        ".error",
      );
      assertEquals(await page.locator("#messages li", { hasText: '"auth"' }).count(), 0);
      assertEquals(await page.locator("#whoami").isVisible(), false);
    });
    await t.step(
      "typed while signed out: the note says to sign in, and keeps the text",
      async () => {
        await say(page, "hello?");
        await textOf(
          page,
          "#send-note",
          "Not sent: this chat needs you to sign in first.",
        );
        assertEquals(await page.inputValue("#input"), "hello?");
        assertEquals(await page.locator("#messages li.pending").count(), 0);
      },
    );
  },
  { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: TOKEN_SECRET },
);

browserTest(
  "browser: one account on a laptop and a phone",
  async (t, browser, server) => {
    const laptop = await open(browser, server, `#auth=${await tokenFor("Ann")}`, DESKTOP);
    const phone = await open(browser, server, `#auth=${await tokenFor("Ann")}`, PHONE);

    await t.step("both stay signed in", async () => {
      await textOf(laptop, "#me", "Ann");
      await textOf(phone, "#me", "Ann");
      assertEquals(await laptop.getByText("This session continues in another window.").count(), 0);
    });

    await t.step("what is sent on one shows as your own on the other", async () => {
      await say(phone, "sent from the phone");
      const mine = laptop.locator("#messages li.message.self", { hasText: "sent from the phone" });
      await mine.waitFor(WAIT);
      assertEquals(await mine.locator("button.edit").count(), 1, "your own, so yours to edit");
    });

    await t.step("a conversation held on one shows on a device opened later", async () => {
      const bob = await open(browser, server, `#auth=${await tokenFor("Bob")}`, DESKTOP);
      await say(bob, "!pm Ann are you there?");
      await message(laptop, "are you there?", ".private");
      await say(phone, "!pm Bob yes, on my phone");
      await message(bob, "yes, on my phone", ".private");
      const tablet = await open(browser, server, `#auth=${await tokenFor("Ann")}`, PHONE);
      await tablet.click("#rooms-toggle");
      await tablet.locator("#conversations button", { hasText: "Bob" }).click();
      await message(tablet, "are you there?", "", "#conversation");
      await message(tablet, "yes, on my phone", "", "#conversation");
      assertEquals(
        await tablet.locator("#messages li.private").count(),
        0,
        "the replay is not news in the room",
      );
    });
  },
  { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: TOKEN_SECRET },
);

const OPERATOR_PASSWORD = "a-browser-operator-password";

browserTest(
  "browser: a moderator removes someone else's message from the page",
  async (t, browser, server) => {
    const ann = await open(browser, server, "?name=Ann", DESKTOP);
    const mod = await open(browser, server, "?name=Mod", DESKTOP);
    await say(ann, "spam, spam, spam");
    const spam = mod.locator("#messages li.message", { hasText: "spam, spam, spam" });
    await spam.waitFor(WAIT);

    await t.step("a user has no Delete on someone else's message", async () => {
      assertEquals(await spam.locator("button").count(), 0);
    });

    await t.step(
      "once a moderator, Delete appears on it, and removes it for everyone",
      async () => {
        await say(mod, `!op ${OPERATOR_PASSWORD}`);
        await message(mod, "You are now a moderator.", ".system");
        const remove = spam.locator("button.delete");
        assertEquals(await remove.getAttribute("aria-label"), "Delete the message of Ann");
        assertEquals(await spam.locator("button.edit").count(), 0, "nobody edits another's words");
        mod.once("dialog", (dialog) => dialog.accept());
        await spam.hover();
        await remove.click();
        await textOf(ann, "#messages li.removed .text", "message removed");
        await textOf(mod, "#messages li.removed .text", "message removed");
      },
    );
  },
  { CHAT_OPERATOR_PASSWORD: OPERATOR_PASSWORD },
);

Deno.test({
  name: "browser: one account on a laptop and a phone, through different instances",
  ignore: !browserAvailable() || !natsAvailable(),
  // Playwright keeps its own timers and pipes alive between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startCluster({
      instances: 2,
      env: { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: TOKEN_SECRET },
    });
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const [a, b] = cluster.instances;
      const laptop = await open(browser, a, `#auth=${await tokenFor("Ann")}`, DESKTOP);
      const phone = await open(browser, b, `#auth=${await tokenFor("Ann")}`, PHONE);
      await textOf(phone, "#me", "Ann");
      await say(phone, "sent through the other server");
      const mine = laptop.locator("#messages li.message.self", {
        hasText: "sent through the other server",
      });
      await mine.waitFor(WAIT);
      await say(laptop, "and back");
      await phone.locator("#messages li.message.self", { hasText: "and back" }).waitFor(WAIT);
      assertEquals(await laptop.getByText("This session continues in another window.").count(), 0);
    } finally {
      await browser?.close();
      await cluster.dispose();
    }
  },
});
