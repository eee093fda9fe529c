/** Signed tokens for tests: HS256 with one secret, and the verifier a server checks them with. */

import { SignJWT } from "jose";
import { createVerifier, type TokenVerifier } from "../src/auth/tokens.ts";

/** What {@linkcode hs256} gives: a verifier, and tokens it accepts. */
export interface Hs256 {
  readonly verifier: TokenVerifier;
  /** A token naming `sub` with `roles`, valid for an hour. */
  sign(sub: string, roles?: string[]): Promise<string>;
}

/** Tokens signed with `secret` (32 characters at least), checked with the defaults of `auth`. */
export async function hs256(secret: string): Promise<Hs256> {
  const verifier = await createVerifier({
    mode: "token",
    algorithm: "HS256",
    secret,
    publicKeyFile: undefined,
    nameClaim: "sub",
    rolesClaim: "roles",
    issuer: undefined,
    audience: undefined,
    expiryWarning: 60,
    maxTokenLifetime: 86_400,
    maxDevices: 5,
    operatorPassword: undefined,
  });
  if (verifier === undefined) throw new Error("token mode made no verifier");
  const key = new TextEncoder().encode(secret);
  return {
    verifier,
    sign: (sub, roles = []) =>
      new SignJWT({ sub, roles }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h")
        .sign(key),
  };
}
