/**
 * Token mode against the real handler: a signed token (each algorithm) says
 * who a client is, a bad or missing one is refused before the upgrade (or
 * with 4001 for v2's hello), and an expiring one warns, renews, or closes.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { createVerifier, type TokenVerifier } from "../../src/auth/tokens.ts";
import type { AuthConfig, TokenAlgorithm } from "../../src/config/mod.ts";
import {
  FLOOD_OFF,
  rawUpgrade,
  TestClient,
  type TestServer,
  type V2Frame,
  within,
  withServer,
} from "./_client.ts";

const SECRET = "a-test-secret-that-is-at-least-32-characters";
/** The longest a token may be valid: `auth.max_token_lifetime`'s default. */
const DAY = 86_400;
const YEAR = 365 * DAY;
const TOO_FAR = `the token expires more than ${DAY} s from now, later than this server accepts`;

/** Now, in the seconds of a token's claims. */
const nowInSeconds = () => Math.floor(Date.now() / 1000);

/** Signs tokens for one algorithm, and the verifier the server checks them with. */
interface Signer {
  /** A token with `claims`, expiring in `expiresIn` seconds (never, with `null`). */
  sign(claims: Record<string, unknown>, expiresIn?: number | null): Promise<string>;
  verifier: TokenVerifier;
}

async function signer(algorithm: TokenAlgorithm, secret = SECRET): Promise<Signer> {
  const auth: AuthConfig = {
    mode: "token",
    algorithm,
    secret: algorithm === "HS256" ? secret : undefined,
    publicKeyFile: undefined,
    nameClaim: "sub",
    rolesClaim: "roles",
    issuer: undefined,
    audience: undefined,
    expiryWarning: 60,
    maxTokenLifetime: DAY,
    maxDevices: 5,
    operatorPassword: undefined,
  };
  let key: CryptoKey | Uint8Array;
  let pem: string | undefined;
  if (algorithm === "HS256") {
    key = new TextEncoder().encode(secret);
  } else {
    const pair = await generateKeyPair(algorithm, { extractable: true });
    key = pair.privateKey;
    pem = await exportSPKI(pair.publicKey);
  }
  const verifier = (await createVerifier(auth, pem))!;
  return {
    verifier,
    sign(claims, expiresIn = 3600) {
      const token = new SignJWT(claims).setProtectedHeader({ alg: algorithm });
      if (expiresIn !== null) {
        token.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
      }
      return token.sign(key);
    },
  };
}

/** The status line's code and the body of an upgrade the server refused. */
async function refusal(port: number, query: string): Promise<[number, string]> {
  const answer = await rawUpgrade(port, { path: `/ws${query}` });
  let text = new TextDecoder().decode(answer.after);
  const chunk = new Uint8Array(1024);
  while (!text.includes("\n")) {
    const read = await within(answer.conn.read(chunk), "the refusal's body");
    if (read === null) break;
    text += new TextDecoder().decode(chunk.subarray(0, read));
  }
  answer.conn.close();
  return [answer.status, text.trim()];
}

/** A v2 client that says hello with `auth`; returns it and its first event. */
async function helloWith(server: TestServer, auth?: string, name?: string) {
  const client = await TestClient.connect<V2Frame>(server.url, "chat.v2");
  client.send(JSON.stringify({ type: "hello", auth, name }));
  return { client, first: await client.next() };
}

for (const algorithm of ["HS256", "RS256", "ES256", "EdDSA"] as const) {
  Deno.test(`token mode with ${algorithm}`, async (t) => {
    const { sign, verifier } = await signer(algorithm);
    const other = await signer(algorithm, `another ${SECRET}`);
    await withServer({ verifier }, async (server) => {
      await t.step("?token= names the text client; ?name= is ignored", async () => {
        const token = await sign({ sub: "Alice", roles: ["moderator"] });
        const client = await TestClient.connect(`${server.url}?token=${token}&name=Mallory`);
        const welcome = await client.next();
        assertEquals(welcome.body, 'Welcome, Alice (hint: type "!help" for help)');
        client.send("!setname Eve");
        assertEquals(await client.nextPair(), [
          "SERVER",
          'Cannot change your name to "Eve": names come from your sign-in token here',
        ]);
        await client.close();
      });

      await t.step(
        "a token valid for max_token_lifetime is welcome; !refresh to longer is not",
        async () => {
          const iat = nowInSeconds();
          const token = await sign({ sub: "Daisy", iat, exp: iat + DAY }, null);
          const client = await TestClient.connect(`${server.url}?token=${token}`);
          assertEquals((await client.next()).body, 'Welcome, Daisy (hint: type "!help" for help)');
          client.send(`!refresh ${await sign({ sub: "Daisy" }, 100 * YEAR)}`);
          assertEquals(await client.nextPair(), ["SERVER", `Your token was refused: ${TOO_FAR}`]);
          await client.close();
        },
      );

      await t.step("v2 hello carries the token as auth", async () => {
        const { client, first } = await helloWith(server, await sign({ sub: "Bob" }), "Mallory");
        assertEquals([first.type, first.name], ["welcome", "Bob"]);
        await client.close();
      });

      const refused: [string, () => Promise<string>, string][] = [
        [
          "no token",
          () => Promise.resolve(""),
          "a token is required: connect with ?token=<signed token>",
        ],
        [
          "another key's token",
          () => other.sign({ sub: "Alice" }),
          "the token's signature is not valid",
        ],
        ["an expired token", () => sign({ sub: "Alice" }, -60), "the token has expired"],
        [
          "a token that never expires",
          () => sign({ sub: "Alice" }, null),
          'the token\'s "exp" claim is not valid (missing)',
        ],
        [
          "a token with no name",
          () => sign({ roles: [] }),
          'the token has no "sub" claim naming the user',
        ],
        [
          "a name that cannot be used",
          () => sign({ sub: "bad name!" }),
          'the name in the token cannot be used: it may only contain letters, digits, "_", "-" and "."',
        ],
        [
          "not a token",
          () => Promise.resolve("not-a-jwt"),
          'the token is not a valid signed JWT naming the user in "sub"',
        ],
        ["a token valid for a hundred years", () => sign({ sub: "Alice" }, 100 * YEAR), TOO_FAR],
        [
          "a token issued for longer than max_token_lifetime",
          () => {
            const iat = nowInSeconds() - 7200;
            return sign({ sub: "Alice", iat, exp: iat + DAY + 60 }, null);
          },
          `the token is valid for ${
            DAY + 60
          } s from "iat" to "exp", longer than the ${DAY} s this server accepts`,
        ],
        [
          "a token issued for a day, a hundred years from now",
          () => {
            const iat = nowInSeconds() + 100 * YEAR;
            return sign({ sub: "Alice", iat, exp: iat + DAY }, null);
          },
          TOO_FAR,
        ],
      ];
      for (const [what, token, reason] of refused) {
        await t.step(`${what}: 401 before the upgrade`, async () => {
          const value = await token();
          const query = value === "" ? "" : `?token=${value}`;
          assertEquals(await refusal(server.port, query), [401, `Unauthorized: ${reason}`]);
        });
        await t.step(`${what} in v2 hello: an error, then 4001`, async () => {
          const value = await token();
          const { client, first } = await helloWith(server, value === "" ? undefined : value);
          const expected = value === ""
            ? 'a token is required: send it as "auth" in hello or resume'
            : reason;
          assertEquals([first.type, first.code, first.text], [
            "error",
            "unauthorized",
            `Your token was refused: ${expected}`,
          ]);
          assertEquals((await within(client.closed, "the close")).code, 4001);
        });
      }
    });
  });
}

Deno.test("a token that expires warns, may be renewed, or closes with 4001", async (t) => {
  const { sign, verifier } = await signer("HS256");
  await withServer({ verifier, expiryWarning: 2 }, async (server) => {
    const connect = async (name: string, expiresIn: number) => {
      const client = await TestClient.connect<V2Frame>(server.url, "chat.v2");
      client.send(JSON.stringify({ type: "hello", auth: await sign({ sub: name }, expiresIn) }));
      await client.waitFor((event) => event.type === "welcome");
      return client;
    };
    const [renewing, lapsing] = await Promise.all([connect("Ren", 3), connect("Lapse", 3)]);

    await t.step("the warning comes expiry_warning seconds before", async () => {
      for (const client of [renewing, lapsing]) {
        const warning = await client.waitFor((event) => event.type === "system", "the warning");
        assertMatch(
          String(warning.text),
          /^Your sign-in expires in [12] s: send a fresh token to stay\.$/,
        );
      }
    });

    await t.step("a token naming someone else does not renew", async () => {
      renewing.send(JSON.stringify({ type: "refresh", auth: await sign({ sub: "Lapse" }) }));
      const refused = await renewing.waitFor((event) => event.type === "error");
      assertEquals(refused.text, "Your token was refused: the token names Lapse, not you");
    });

    await t.step("a token valid too long does not renew", async () => {
      renewing.send(
        JSON.stringify({ type: "refresh", auth: await sign({ sub: "Ren" }, 100 * YEAR) }),
      );
      const refused = await renewing.waitFor((event) => event.type === "error");
      assertEquals(refused.text, `Your token was refused: ${TOO_FAR}`);
    });

    await t.step("a fresh token renews the session", async () => {
      renewing.send(JSON.stringify({ type: "refresh", auth: await sign({ sub: "Ren" }) }));
      const renewed = await renewing.waitFor((event) => event.type === "system");
      assertEquals(renewed.text, "Your sign-in is renewed.");
    });

    await t.step("without one, the session ends with 4001", async () => {
      const expired = await lapsing.waitFor((event) => event.type === "error", "the end", 6000);
      assertEquals(expired.text, "Your sign-in has expired: connect again with a fresh token.");
      assertEquals((await within(lapsing.closed, "the close")).code, 4001);
      assertEquals(server.metrics.connectionsClosed.get("unauthorized"), 1);
    });

    await t.step("the renewed one is still open past the first expiry", async () => {
      await delay(200);
      renewing.send(JSON.stringify({ type: "ping" }));
      assertEquals((await renewing.waitFor((event) => event.type === "system")).text, "pong!");
      await renewing.close();
    });
  });
});

Deno.test("an account signs in on several devices; past max_devices the oldest closes", async () => {
  const { sign, verifier } = await signer("HS256");
  await withServer({ verifier, maxDevices: 2 }, async (server) => {
    const device = async () => {
      const client = await TestClient.connect(
        `${server.url}?token=${await sign({ sub: "Alice" })}`,
      );
      await client.waitFor((frame) => frame.body.startsWith("Welcome, Alice"));
      return client;
    };
    const phone = await device();
    const laptop = await device();
    const bob = await TestClient.connect(`${server.url}?token=${await sign({ sub: "Bob" })}`);
    await bob.waitFor((frame) => frame.body.startsWith("Welcome, Bob"));
    for (const own of [phone, laptop]) {
      await own.waitFor((frame) => frame.body === "Bob has connected!");
    }
    laptop.send("from the laptop");
    for (const own of [phone, laptop]) {
      const line = await own.waitFor((frame) => frame.body.endsWith("from the laptop"));
      assertEquals([line.origin, line.body], ["SELF", "Alice: from the laptop"]);
    }
    const seen = await bob.waitFor((frame) => frame.body.endsWith("from the laptop"));
    assertEquals([seen.origin, seen.body], ["USER", "Alice: from the laptop"]);
    bob.send("!who");
    const who = await bob.waitFor((frame) => frame.body.startsWith("Connected Users"));
    assertEquals(who.body, "Connected Users: Alice, Bob");

    const tablet = await device();
    const told = await phone.waitFor((frame) => frame.body.startsWith("You signed in"));
    assertEquals(
      told.body,
      "You signed in on another device, and 2 at once is the most: this one, the oldest, is closed.",
    );
    assertEquals((await within(phone.closed, "the oldest device to close")).code, 4000);
    tablet.send("from the tablet");
    await laptop.waitFor((frame) => frame.body === "Alice: from the tablet");
    await Promise.all([laptop.close(), tablet.close(), bob.close()]);
  });
});

Deno.test("a first frame that cannot be read says why, not that it had no token", async () => {
  const { sign, verifier } = await signer("HS256");
  await withServer({ verifier }, async (server) => {
    const client = await TestClient.connect<V2Frame>(server.url, "chat.v2");
    const auth = await sign({ sub: "Alice" });
    client.send(JSON.stringify({ type: "resume", name: "Alice", auth, privates: { seq: -1 } }));
    const first = await client.next();
    assertEquals([first.code, first.text], [
      "bad_request",
      'Bad request: "privates" must be {"epoch", "seq"}: the last private message you saw',
    ]);
    assertEquals((await within(client.closed, "the close")).code, 4001);
  });
});

Deno.test("a token's roles make a moderator; others are refused", async () => {
  const { sign, verifier } = await signer("ES256");
  await withServer({ verifier }, async (server) => {
    const connect = async (claims: Record<string, unknown>) => {
      const client = await TestClient.connect(`${server.url}?token=${await sign(claims)}`);
      await client.next();
      return client;
    };
    const mod = await connect({ sub: "Mod", roles: "moderator" });
    const admin = await connect({ sub: "Boss", roles: ["admin"] });
    const user = await connect({ sub: "User" });
    user.send("!kick Mod");
    assertEquals(
      (await user.waitFor((frame) => frame.body.startsWith("Only"))).body,
      "Only moderators may use !kick.",
    );
    mod.send("!kick Boss");
    assertEquals(
      (await mod.waitFor((frame) => frame.body.startsWith("You may not"))).body,
      "You may not moderate Boss.",
    );
    admin.send("!kick Mod too loud");
    assertEquals((await within(mod.closed, "the kick")).code, 4003);
    assert(server.metrics.moderationActions.get("kick") === 1);
    await Promise.all([admin.close(), user.close()]);
  });
});

Deno.test("a token naming a look-alike of a connected user is refused", async () => {
  const { sign, verifier } = await signer("HS256");
  await withServer({ verifier }, async (server) => {
    const bob = await TestClient.connect(`${server.url}?token=${await sign({ sub: "Bob" })}`);
    await bob.next();
    assertEquals(await refusal(server.port, `?token=${await sign({ sub: "B0b" })}`), [
      401,
      "Unauthorized: the name B0b is too like Bob's, who is connected",
    ]);
    const { client, first } = await helloWith(server, await sign({ sub: "BOB" }));
    assertEquals(
      first.text,
      "Your token was refused: the name BOB is too like Bob's, who is connected",
    );
    assertEquals((await within(client.closed, "the close")).code, 4001);
    await bob.close();
  });
});

Deno.test("a ban or a mute holds nobody of the rank that set it, or higher", async () => {
  const { sign, verifier } = await signer("HS256");
  await withServer({ verifier, chat: { flood: FLOOD_OFF } }, async (server) => {
    const mod = await TestClient.connect(
      `${server.url}?token=${await sign({ sub: "Mod", roles: ["moderator"] })}`,
    );
    await mod.next();
    mod.send("!ban name:Boss 1h while away");
    assertEquals(
      (await mod.waitFor((frame) => frame.body.startsWith("Done"))).body,
      "Done: Boss is banned for 1 hour.",
    );
    mod.send("!ban name:Pleb 1h");
    await mod.waitFor((frame) => frame.body === "Done: Pleb is banned for 1 hour.");
    // The admin, offline when a moderator banned them, still comes in; a user does not.
    const boss = await TestClient.connect(
      `${server.url}?token=${await sign({ sub: "Boss", roles: "admin" })}`,
    );
    assertEquals((await boss.next()).body, 'Welcome, Boss (hint: type "!help" for help)');
    assertEquals((await refusal(server.port, `?token=${await sign({ sub: "Pleb" })}`))[0], 403);
    mod.send("!unban Boss");
    await mod.waitFor((frame) => frame.body === "Done: Boss is no longer banned.");
    boss.send("!ban name:Mod2 1h");
    await boss.waitFor((frame) => frame.body === "Done: Mod2 is banned for 1 hour.");
    mod.send("!unban Mod2");
    assertEquals(
      (await mod.waitFor((frame) => frame.body.startsWith("You may not"))).body,
      "You may not moderate Mod2.",
    );
    await Promise.all([mod.close(), boss.close()]);
  });
});
