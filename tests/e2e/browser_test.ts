/**
 * The browser client in headless Chromium, used as people would: three
 * windows chatting across rooms, privately, offline, after a reload and a
 * restart; a phone-sized screen; and an accessibility scan of every view.
 */

import { assert, assertEquals } from "@std/assert";
import axe from "axe-core";
import { SignJWT } from "jose";
import type { Page } from "playwright-core";
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
import { within } from "./_client.ts";
import { startServerProcess } from "./_process.ts";

/** The serious and critical problems axe-core finds on the page as it is now. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => "axe" in globalThis))) {
    // Evaluated by the browser's debugger, as a <script> of the page's own would be refused.
    await page.evaluate((axe as unknown as { source: string }).source);
  }
  const violations = await page.evaluate(async () => {
    const run = (globalThis as unknown as {
      axe: {
        run(options: object): Promise<{
          violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
        }>;
      };
    }).axe.run;
    const results = await run({ resultTypes: ["violations"] });
    return results.violations.map(({ id, impact, nodes }) => ({
      id,
      impact,
      targets: nodes.map((node) => node.target.join(" ")),
    }));
  });
  return violations.filter(({ impact }) => impact === "serious" || impact === "critical")
    .map(({ id, targets }) => `${id}: ${targets.join(", ")}`);
}

Deno.test({
  name:
    "browser: three windows chat across rooms, privately, offline, after a reload and a restart",
  ignore: !browserAvailable(),
  // Playwright keeps its own timers and pipes alive between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    let server = await startServerProcess();
    const port = Number(new URL(server.httpUrl).port);
    const browser = await launchBrowser();
    try {
      const ann = await open(browser, server, "?name=Ann");
      const bob = await open(browser, server, "?name=Bob");
      await textOf(ann, "#me", "Ann");
      await textOf(bob, "#me", "Bob");

      await t.step("the page is labelled for screen readers", async () => {
        assertEquals(await ann.getAttribute("#messages", "aria-live"), "polite");
        assertEquals(await ann.getAttribute("#status", "role"), "status");
        assertEquals(await ann.getAttribute("#input", "role"), "combobox");
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

      await t.step(
        "command hints: a short list, filtered, chosen with the arrow keys",
        async () => {
          await ann.fill("#input", "!");
          await ann.locator("#hints").waitFor({ state: "visible", ...WAIT });
          assertEquals(await ann.getAttribute("#input", "aria-expanded"), "true");
          assertEquals(await ann.locator("#hints [role=option]").count(), 8);
          await ann.fill("#input", "!jo");
          await textOf(
            ann,
            "#hints [role=option]",
            "!join <room>moves you to a room (created if new)",
          );
          await textOf(ann, "#hint-count", "1 command");
          await ann.press("#input", "ArrowDown");
          assertEquals(await ann.getAttribute("#input", "aria-activedescendant"), "hint-join");
          await ann.press("#input", "Enter");
          assertEquals(await ann.inputValue("#input"), "!join ");
          assertEquals(await ann.locator("#hints").isHidden(), true);
          await ann.fill("#input", "!p");
          await ann.press("#input", "Escape");
          assertEquals(await ann.locator("#hints").isHidden(), true);
          await ann.fill("#input", "");
        },
      );

      const carol = await open(browser, server, "?name=Carol");

      await t.step("member counts are live and agree with the member list", async () => {
        await textOf(ann, "#members li", /^Carol$/);
        await textOf(ann, "#rooms button[aria-current=true] .count", "3");
        assertEquals(await ann.locator("#members li").count(), 3);
      });

      await t.step("the room list keeps the focus when it is drawn again", async () => {
        await ann.focus("#rooms button[data-key='room:lobby']");
        await carol.fill("#new-room", "quiet");
        await carol.press("#new-room", "Enter");
        await textOf(ann, "#members li", /^Ann \(you\)$/);
        await ann.locator("#rooms button[aria-current=true] .count").filter({ hasText: /^2$/ })
          .waitFor(WAIT);
        assertEquals(
          await ann.evaluate("document.activeElement?.getAttribute('data-key')"),
          "room:lobby",
        );
      });

      await t.step(
        "unread counts: rooms never visited too, one badge, none for the current room",
        async () => {
          await carol.fill("#input", "!join games");
          await carol.press("#input", "Enter");
          await textOf(carol, "#current-room", "#games");
          await say(carol, "first in games");
          await say(carol, "second in games");
          await textOf(bob, "#rooms button[data-key='room:games'] .unread", "2");
          assertEquals(await bob.locator("#rooms button[aria-current=true] .unread").count(), 0);
          await bob.click("#rooms button[data-key='room:games']");
          await textOf(bob, "#current-room", "#games");
          await message(bob, "first in games", ".history");
          await message(bob, "second in games", ".history");
          assertEquals(
            await bob.locator("#rooms button[data-key='room:games'] .unread").count(),
            0,
          );
        },
      );

      await t.step("a private conversation, started from the member list", async () => {
        await bob.locator("#members button", { hasText: "Carol" }).click();
        await textOf(bob, "#current-room", "Private with Carol");
        await say(bob, "just between us");
        await message(bob, "just between us", ".private", "#conversation");
        await textOf(carol, "#conversations button[data-key='pm:Bob'] .unread", "1");
        await carol.click("#conversations button[data-key='pm:Bob']");
        await message(carol, "just between us", ".private", "#conversation");
        assertEquals(await carol.locator("#conversations .unread").count(), 0);
        await say(carol, "agreed");
        await message(bob, "agreed", ".private", "#conversation");
      });

      await t.step("after a reload the session and its conversations are back", async () => {
        await carol.reload();
        await textOf(carol, "#me", "Carol");
        // The conversation that was open is open again, and the room is behind it.
        await textOf(carol, "#current-room", "Private with Bob");
        await message(carol, "just between us", "", "#conversation");
        await message(carol, "agreed", "", "#conversation");
        await carol.click("#rooms button[data-key='room:games']");
        await textOf(carol, "#current-room", "#games");
        await message(carol, "second in games", ".history");
        assertEquals(
          await bob.locator("#messages li", { hasText: /Carol has (left|disconnected)/ }).count(),
          0,
        );
      });

      await t.step("the name asked for is kept, or the reason is shown", async () => {
        const twin = await open(browser, server, "?name=Ann");
        await textOf(twin, "#status", /^Cannot use the name "Ann": it is taken\. You are \S+\.$/);
        await twin.context().close();
        await ann.goto(`${server.httpUrl}/?name=Annie`);
        await textOf(ann, "#me", "Annie");
      });

      await t.step(
        "offline, what is typed waits visibly and goes out on reconnecting",
        async () => {
          server.child.kill("SIGTERM");
          await server.child.status;
          await textOf(ann, "#status", /^Disconnected/);
          await say(ann, "typed while offline");
          await message(ann, "typed while offline", ".pending");
          await textOf(
            ann,
            "#send-note",
            "Offline: 1 message will be sent when the connection is back.",
          );
          server = await startServerProcess({ port });
          await textOf(ann, "#status", "Connected");
          await textOf(bob, "#status", "Connected");
          await textOf(carol, "#status", "Connected");
          await message(ann, "typed while offline", ".message.self");
          assertEquals(await ann.locator("#messages li.pending").count(), 0);
          assertEquals(await ann.locator("#send-note").isHidden(), true);
        },
      );

      await t.step(
        "after the restart: a gap line, then chat goes on in three windows",
        async () => {
          // Carol was reading her conversation with Bob; the room is a click away.
          await carol.click("#rooms button[data-key='room:games']");
          await textOf(carol, "#current-room", "#games");
          // The restarted server kept no history: the page says what may be missing.
          await message(carol, "Messages of games may be missing", ".gap");
          await say(carol, "back after the restart");
          await bob.click("#rooms button[data-key='room:games']");
          await message(bob, "back after the restart", ".message");
          await say(ann, "lobby after the restart");
          await bob.click("#rooms button[data-key='room:lobby']");
          await message(bob, "lobby after the restart");
        },
      );
    } finally {
      await browser.close();
      await server.kill();
    }
  },
});

browserTest(
  "browser: on a phone the messages take the screen, rooms and people are drawers",
  async (t, browser, server) => {
    const desk = await open(browser, server, "?name=Desk");
    for (const room of ["ops", "games", "music", "random"]) {
      await say(desk, `!join ${room}`);
      await textOf(desk, "#current-room", `#${room}`);
    }
    const phone = await open(browser, server, "?name=Phone", PHONE);
    await phone.locator("#rooms button[data-key='room:random']").waitFor({
      state: "attached",
      ...WAIT,
    });
    const paneHeight = async () => (await phone.locator("#messages").boundingBox())!.height;

    await t.step("the message pane takes most of the height, hints open or not", async () => {
      const height = await paneHeight();
      assert(height >= PHONE.height * 0.6, `the pane is ${height} px tall`);
      await phone.fill("#input", "!");
      await phone.locator("#hints").waitFor({ state: "visible", ...WAIT });
      assertEquals(await paneHeight(), height);
      await phone.fill("#input", "");
    });

    await t.step("rooms open as a drawer, and close with Escape back to its button", async () => {
      assertEquals(await phone.locator("#rooms-panel").isHidden(), true);
      await phone.click("#rooms-toggle");
      await phone.locator("#rooms-panel").waitFor({ state: "visible", ...WAIT });
      assertEquals(await phone.getAttribute("#rooms-toggle", "aria-expanded"), "true");
      assertEquals(
        await phone.evaluate(
          "document.getElementById('rooms-panel').contains(document.activeElement)",
        ),
        true,
      );
      await phone.keyboard.press("Escape");
      assertEquals(await phone.locator("#rooms-panel").isHidden(), true);
      assertEquals(await phone.evaluate("document.activeElement?.id"), "rooms-toggle");
    });

    await t.step("joining from the drawer closes it and shows the room", async () => {
      await phone.click("#rooms-toggle");
      await phone.click("#rooms button[data-key='room:ops']");
      await textOf(phone, "#current-room", "#ops");
      assertEquals(await phone.locator("#rooms-panel").isHidden(), true);
    });

    await t.step("people open as a drawer from the other side", async () => {
      await phone.click("#members-toggle");
      await phone.locator("#members-panel").waitFor({ state: "visible", ...WAIT });
      await textOf(phone, "#members li", /^Phone \(you\)$/);
      // The uncovered edge of the dimmed page closes the drawer.
      await phone.click(".scrim", { position: { x: 10, y: 300 } });
      assertEquals(await phone.locator("#members-panel").isHidden(), true);
    });

    await t.step("nothing overflows sideways at 320 px", async () => {
      await phone.setViewportSize({ width: 320, height: 640 });
      await say(phone, "a-very-long-word-".repeat(12));
      await message(phone, "a-very-long-word-");
      const width = Number(await phone.evaluate("document.documentElement.scrollWidth"));
      assert(width <= 320, `the page is ${width} px wide`);
    });
  },
  undefined,
  // A page says what a person would say in a minute within a second (each join also asks for
  // the room list): flood control, one bucket for all pages of one address, would drop some.
  { floodOff: true },
);

browserTest(
  "browser: axe-core finds no serious or critical problem in any view, light or dark",
  async (t, browser, server) => {
    const other = await open(browser, server, "?name=Other");
    await say(other, "something to read");
    for (const scheme of ["light", "dark"] as const) {
      for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
        const page = await open(browser, server, `?name=${scheme}${size}`, viewport);
        await page.emulateMedia({ colorScheme: scheme });
        await message(page, "something to read", ".history");
        const views: [string, () => Promise<void>][] = [
          ["the room", async () => {}],
          ["someone typing", () => typeUntilShown(other, page, "Other")],
          ["your messages, one edited, one removed, with their buttons", async () => {
            await say(page, "mine to edit");
            await message(page, "mine to edit", ".message");
            await page.press("#input", "ArrowUp");
            await page.fill("#input", "mine, edited");
            await page.press("#input", "Enter");
            await page.locator("#messages li.self .edited-mark").waitFor(WAIT);
            await say(page, "mine to remove");
            page.once("dialog", (dialog) => dialog.accept());
            await page.locator("#messages li.self", { hasText: "mine to remove" })
              .locator("button.delete").click();
            await page.locator("#messages li.self.removed").waitFor(WAIT);
            await page.locator("#messages li.self button.edit").last().focus();
          }],
          ["the command hints", async () => {
            await page.fill("#input", "!");
            await page.locator("#hints").waitFor({ state: "visible", ...WAIT });
          }],
          ["a private conversation", async () => {
            await page.fill("#input", "");
            if (size === "phone") await page.click("#members-toggle");
            await page.locator("#members button", { hasText: "Other" }).click();
            await textOf(page, "#current-room", "Private with Other");
          }],
        ];
        if (size === "phone") {
          views.push(["the rooms drawer", () => page.click("#rooms-toggle")]);
          views.push(["the people drawer", async () => {
            await page.keyboard.press("Escape");
            await page.click("#members-toggle");
          }]);
        }
        for (const [name, show] of views) {
          await t.step(`${scheme}, ${size}: ${name}`, async () => {
            await show();
            assertEquals(await accessibilityProblems(page), []);
          });
        }
        await page.context().close();
      }
    }
  },
  undefined,
  // A page says what a person would say in a minute within a second (each join also asks for
  // the room list): flood control, one bucket for all pages of one address, would drop some.
  { floodOff: true },
);

const AUTH_SECRET = "a-browser-test-secret-of-at-least-32-characters";

browserTest(
  "browser: signed in by the application that opens it with #auth=, and renewed the same way",
  async (t, browser, server) => {
    const sign = (name: string, lifetime: number) =>
      new SignJWT({ sub: name }).setProtectedHeader({ alg: "HS256" })
        .setExpirationTime(Math.floor(Date.now() / 1000) + lifetime)
        .sign(new TextEncoder().encode(AUTH_SECRET));
    const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();

    await t.step("without a token the page says where to sign in", async () => {
      await page.goto(`${server.httpUrl}/`);
      await textOf(
        page,
        "#status",
        "This server needs a sign-in: open this page from the application that signs you in.",
      );
      await message(
        page,
        "This chat needs you to sign in: open it from the application that signs you in.",
        ".error",
      );
    });

    const first = await sign("Dana", 600);
    const savedAuth = () =>
      page.evaluate(() => JSON.parse(sessionStorage.getItem("chat.session") ?? "{}").auth);

    await t.step("#auth= signs in with the token's name and leaves the address", async () => {
      await page.goto(`${server.httpUrl}/?name=Mallory#auth=${first}`);
      await textOf(page, "#me", "Dana");
      assertEquals(new URL(page.url()).hash, "");
    });

    await t.step("a refused #auth= is shown, and the sign-in keeps its token", async () => {
      await page.evaluate((token) => location.hash = `auth=${token}`, await sign("Eve", 600));
      await message(page, "Your token was refused: the token names Eve, not you", ".error");
      assertEquals(await savedAuth(), first);
    });

    await t.step("a fresh #auth= renews the sign-in", async () => {
      // Short-lived, so that the next step sees it run out.
      const fresh = await sign("Dana", 4);
      await page.evaluate((token) => location.hash = `auth=${token}`, fresh);
      await message(page, "Your sign-in is renewed.");
      assertEquals(new URL(page.url()).hash, "");
      assertEquals(await savedAuth(), fresh);
    });

    await t.step("when it runs out the page says so; a fresh one signs in again", async () => {
      await textOf(page, "#status", "Your sign-in has ended. Sign in again to go on.");
      assertEquals(await savedAuth(), undefined);
      await page.evaluate((token) => location.hash = `auth=${token}`, await sign("Dana", 600));
      await textOf(page, "#status", "Connected");
      await textOf(page, "#me", "Dana");
      await say(page, "back again");
      await message(page, "back again");
    });
  },
  { CHAT_AUTH_MODE: "token", CHAT_AUTH_SECRET: AUTH_SECRET },
);

browserTest(
  "browser: the client runs under its Content-Security-Policy, and other sites cannot frame it",
  async (t, browser, server) => {
    const violations: string[] = [];
    const context = await browser.newContext({ viewport: PHONE });
    const page = await context.newPage();
    // Chromium reports each blocked load, script or style on the console.
    page.on("console", (line) => {
      if (line.text().includes("Content Security Policy")) violations.push(line.text());
    });

    await t.step("the page and every part of the client work with the policy", async () => {
      const response = await page.goto(`${server.httpUrl}/?name=Strict`);
      assertEquals(
        response?.headers()["content-security-policy"]?.includes("script-src 'self'"),
        true,
      );
      await page.locator("#me").filter({ hasNotText: "…" }).waitFor(WAIT);
      await say(page, "!join strict");
      await textOf(page, "#current-room", "#strict");
      await say(page, "under the policy");
      await message(page, "under the policy", ".message.self");
      await page.click("#rooms-toggle");
      await page.locator("#rooms-panel").waitFor({ state: "visible", ...WAIT });
      await page.emulateMedia({ colorScheme: "dark" });
      assertEquals(violations, []);
    });

    await t.step("a page of another origin that frames it gets nothing", async () => {
      const framing = await context.newPage();
      const refused = new Promise<string>((resolve) =>
        framing.on("console", (line) => {
          if (line.text().includes("frame-ancestors")) resolve(line.text());
        })
      );
      await framing.setContent(`<iframe src="${server.httpUrl}/?name=Framed"></iframe>`);
      assertEquals(
        (await within(refused, "the refusal to frame")).includes("frame-ancestors 'none'"),
        true,
      );
      const frame = framing.frames()[1];
      assertEquals(await frame.locator("#me").count(), 0);
    });
    await context.close();
  },
);
