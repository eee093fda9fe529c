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
const MIN_API_KEY_LENGTH = 16;

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
): Secrets {
  const { mode, algorithm, public_key_file: publicKeyFile } = server.auth;
  const authSecret = getEnv("CHAT_AUTH_SECRET");
  if (mode === "token" && algorithm === "HS256") {
    if (authSecret === undefined) {
      fail(
        "CHAT_AUTH_SECRET",
        `is not set: "auth.mode" token with HS256 in ${serverPath} verifies tokens with this shared secret`,
      );
    }
    if (authSecret.length < MIN_SECRET_LENGTH) {
      fail(
        "CHAT_AUTH_SECRET",
        `must be at least ${MIN_SECRET_LENGTH} characters for HS256: current value has ${authSecret.length}`,
      );
    }
  }
  if (mode === "token" && algorithm !== "HS256" && publicKeyFile === null) {
    fail(
      `"auth.public_key_file" in ${serverPath}`,
      `is required for ${algorithm}: the PEM file of the public key tokens are signed for (or CHAT_AUTH_PUBLIC_KEY_FILE)`,
    );
  }
  const apiKeys = (getEnv("CHAT_API_KEYS") ?? "").split(",").map((key) => key.trim())
    .filter((key) => key !== "");
  const short = apiKeys.find((key) => key.length < MIN_API_KEY_LENGTH);
  if (short !== undefined) {
    fail(
      "CHAT_API_KEYS",
      `must hold comma-separated keys of at least ${MIN_API_KEY_LENGTH} characters: one has ${short.length}`,
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
    operatorPassword: nonEmpty(getEnv("CHAT_OPERATOR_PASSWORD")),
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
