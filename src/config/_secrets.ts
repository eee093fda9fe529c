/**
 * Secrets come from the environment only, never from files that may be
 * committed: the HS256 key, the operator password, the API keys and NATS's
 * credentials, each checked with a message naming the variable.
 *
 * @module
 */

import type { TokenAlgorithm } from "./types.ts";
import { fail } from "./_errors.ts";

/** Shortest secrets accepted: an HS256 key needs 256 bits (RFC 7518, 3.2). */
const MIN_SECRET_LENGTH = 32;
/** ...and the operator password and each API key. */
const MIN_PASSWORD_LENGTH = 16;
/**
 * Fewest different characters in any of them, so `aaaaaaaaaaaaaaaa` or
 * `abababab...` is refused; the output of `openssl rand -hex 16` (32 hex
 * digits) has fewer than 8 about once in 28 million.
 */
const MIN_DIFFERENT = 8;

/** Words that make up weak secrets, looked for in any case. */
const COMMON_WORDS = /password|passwort|qwerty|azerty|letmein|welcome|changeme|admin|secret/gi;

/** `text` without its runs of 4 or more neighbouring characters (`abcd`, `4321`, `aaaa`). */
function withoutRuns(text: string): string {
  const chars = [...text];
  let kept = "";
  for (let start = 0; start < chars.length;) {
    let end = start + 1;
    const step = (chars[start + 1]?.codePointAt(0) ?? NaN) - (chars[start].codePointAt(0) ?? 0);
    if (Math.abs(step) <= 1) {
      while (
        end < chars.length &&
        (chars[end].codePointAt(0) ?? 0) - (chars[end - 1].codePointAt(0) ?? 0) === step
      ) end++;
    }
    if (end - start < 4) end = start + 1;
    if (end - start === 1) kept += chars[start];
    start = end;
  }
  return kept;
}

/** What makes a secret of at least `minLength` characters too weak, if anything. */
function weakness(secret: string, minLength: number): string | undefined {
  if (secret.length < minLength) return `${secret.length} characters`;
  const different = new Set(secret).size;
  if (different < MIN_DIFFERENT) {
    return `only ${different} different character${different === 1 ? "" : "s"}`;
  }
  // What is left once common words and runs (abcd, 1234) are taken out must be a secret still.
  const rest = withoutRuns(secret.replace(COMMON_WORDS, ""));
  if (rest.length < minLength / 2 || new Set(rest).size < MIN_DIFFERENT) {
    return "mostly common words or runs such as abcd or 1234";
  }
  return undefined;
}

/** What a secret must be, and how to make one. */
function strength(minLength: number, purpose = ""): string {
  const example = `"openssl rand -hex ${minLength}"`;
  return `at least ${minLength} characters with at least ${MIN_DIFFERENT} different ones, not mostly common words or runs${purpose}, such as the output of ${example}`;
}

/** What the environment holds for a server. */
export interface Secrets {
  /** The HS256 key, in token mode with HS256. */
  readonly authSecret: string | undefined;
  readonly operatorPassword: string | undefined;
  readonly apiKeys: readonly string[];
  readonly natsCredentials: { readonly user: string; readonly pass: string } | {
    readonly token: string;
  } | undefined;
}

/** The secrets of `server`'s settings, read from the environment and checked. */
export function readSecrets(
  server: { auth: { mode: string; algorithm: TokenAlgorithm; public_key_file: string | null } },
  serverPath: string,
  getEnv: (name: string) => string | undefined,
  sources: ReadonlyMap<string, string> = new Map(),
): Secrets {
  const { mode, algorithm, public_key_file: publicKeyFile } = server.auth;
  // Where the mode was set: the file, or the variable that overrides it.
  const modeSource = sources.has("auth.mode")
    ? `${sources.get("auth.mode")}=token`
    : `"auth.mode" token in ${serverPath}`;
  const authSecret = getEnv("CHAT_AUTH_SECRET");
  if (mode === "token" && algorithm === "HS256") {
    if (authSecret === undefined) {
      fail(
        "CHAT_AUTH_SECRET",
        `is not set: ${modeSource} with HS256 verifies tokens with this shared secret`,
      );
    }
    const weak = weakness(authSecret, MIN_SECRET_LENGTH);
    if (weak !== undefined) {
      fail(
        "CHAT_AUTH_SECRET",
        `must be ${strength(MIN_SECRET_LENGTH, " for HS256")}: current value has ${weak}`,
      );
    }
  }
  if (mode === "token" && algorithm !== "HS256" && publicKeyFile === null) {
    fail(
      `"auth.public_key_file" in ${serverPath}`,
      `is required for ${algorithm} (with ${modeSource}): the PEM file of the public key tokens are signed for (or CHAT_AUTH_PUBLIC_KEY_FILE)`,
    );
  }
  const apiKeys = (getEnv("CHAT_API_KEYS") ?? "").split(",").map((key) => key.trim())
    .filter((key) => key !== "");
  apiKeys.forEach((key, index) => {
    const weak = weakness(key, MIN_PASSWORD_LENGTH);
    if (weak === undefined) return;
    fail(
      "CHAT_API_KEYS",
      `must hold comma-separated keys of ${strength(MIN_PASSWORD_LENGTH)}: key ${
        index + 1
      } has ${weak}`,
    );
  });
  const operatorPassword = nonEmpty(getEnv("CHAT_OPERATOR_PASSWORD"));
  const weakPassword = operatorPassword === undefined
    ? undefined
    : weakness(operatorPassword, MIN_PASSWORD_LENGTH);
  if (weakPassword !== undefined) {
    fail(
      "CHAT_OPERATOR_PASSWORD",
      `must be ${strength(MIN_PASSWORD_LENGTH)}: current value has ${weakPassword}`,
    );
  }
  const natsUser = getEnv("CHAT_NATS_USER");
  const natsPassword = getEnv("CHAT_NATS_PASSWORD");
  if ((natsUser === undefined) !== (natsPassword === undefined)) {
    fail(
      natsUser === undefined ? "CHAT_NATS_USER" : "CHAT_NATS_PASSWORD",
      "is not set: NATS credentials need both CHAT_NATS_USER and CHAT_NATS_PASSWORD",
    );
  }
  const natsToken = getEnv("CHAT_NATS_TOKEN");
  return {
    authSecret: mode === "token" && algorithm === "HS256" ? authSecret : undefined,
    operatorPassword,
    apiKeys,
    natsCredentials: natsUser !== undefined && natsPassword !== undefined
      ? { user: natsUser, pass: natsPassword }
      : natsToken !== undefined
      ? { token: natsToken }
      : undefined,
  };
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === "" ? undefined : text;
}
