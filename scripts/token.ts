/**
 * `deno task token --sub NAME [--role moderator] [--ttl 1h] [--key FILE] [--env ENV]`:
 * prints a signed token the server configured here accepts, for development
 * and trying token mode out. It reads the configuration as the server does
 * (`CHAT_ENV`, `CHAT_CONFIG_DIR`, `CHAT_AUTH_*`): the algorithm, the claims
 * the names and roles are read from, the issuer and audience, and for HS256
 * the secret in `CHAT_AUTH_SECRET`. The other algorithms sign with the
 * private key given by `--key` (PKCS#8 PEM), the pair of `auth.public_key_file`.
 * Production tokens come from your identity provider, not from here.
 */

import { parseArgs } from "@std/cli/parse-args";
import { importPKCS8, SignJWT } from "jose";
import { ConfigError, loadConfig } from "../src/config/mod.ts";
import { formatDuration, parseDuration } from "../src/text/duration.ts";

const USAGE =
  `Usage: deno task token --sub NAME [--role ROLE]... [--ttl 1h] [--key FILE] [--env ENV]

  --sub NAME   the user's name (put in the configured name claim)
  --role ROLE  a role, such as moderator or admin; may be given again
  --ttl TIME   how long the token is valid: 90s, 15m, 1h, 2d (default 1h)
  --key FILE   the private key (PKCS#8 PEM) for RS256, ES256 or EdDSA
  --env ENV    the config environment (default: CHAT_ENV, else local)`;

/** Prints `message` (and the usage) to stderr and exits with 2. */
function fail(message: string, usage = false): never {
  console.error(usage ? `${message}\n\n${USAGE}` : message);
  Deno.exit(2);
}

const flags = parseArgs(Deno.args, {
  string: ["sub", "role", "ttl", "key", "env"],
  boolean: ["help"],
  collect: ["role"],
  default: { ttl: "1h" },
  unknown: (flag: string) => fail(`Unknown option ${flag}`, true),
});
if (flags.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const sub = flags.sub?.trim();
if (sub === undefined || sub === "") fail("--sub NAME is required", true);
const ttl = parseDuration(flags.ttl);
if (ttl === undefined) fail(`--ttl must be a time such as 90s, 15m, 1h or 2d: ${flags.ttl}`);

let auth;
try {
  auth = (await loadConfig({ flags: { env: flags.env } })).server.auth;
} catch (error) {
  if (error instanceof ConfigError) fail(error.message);
  throw error;
}
if (ttl > auth.maxTokenLifetime) {
  fail(
    `--ttl ${flags.ttl} is longer than the server accepts: auth.max_token_lifetime is ${
      formatDuration(auth.maxTokenLifetime)
    }`,
  );
}

let key: Uint8Array | CryptoKey;
if (auth.algorithm === "HS256") {
  // In open mode the server does not read the secret, but the token is for token mode.
  const secret = auth.secret ?? Deno.env.get("CHAT_AUTH_SECRET");
  if (secret === undefined || secret === "") {
    fail("CHAT_AUTH_SECRET is not set: set it to the secret the server checks tokens with");
  }
  key = new TextEncoder().encode(secret);
} else {
  if (flags.key === undefined) {
    fail(`--key FILE is needed: tokens are signed with ${auth.algorithm} here (auth.algorithm)`);
  }
  try {
    key = await importPKCS8(await Deno.readTextFile(flags.key), auth.algorithm);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    fail(`--key ${flags.key} is not a PKCS#8 PEM private key for ${auth.algorithm}: ${reason}`);
  }
}

const claims: Record<string, unknown> = { [auth.nameClaim]: sub };
if (flags.role.length > 0) claims[auth.rolesClaim] = flags.role;
let token = new SignJWT(claims)
  .setProtectedHeader({ alg: auth.algorithm })
  .setIssuedAt()
  .setExpirationTime(`${ttl}s`);
if (auth.nameClaim !== "sub") token = token.setSubject(sub);
if (auth.issuer !== undefined) token = token.setIssuer(auth.issuer);
if (auth.audience !== undefined) token = token.setAudience(auth.audience);
console.log(await token.sign(key));
