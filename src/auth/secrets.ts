/**
 * Comparing secrets (session tokens, the operator password, API keys) in
 * time that does not depend on where they differ, so timing tells an
 * attacker nothing about how close a guess was.
 *
 * @module
 */

import { timingSafeEqual } from "@std/crypto/timing-safe-equal";

const utf8 = new TextEncoder();

/** Whether `given` is `secret`, in time that depends only on their lengths. */
export function sameSecret(given: string, secret: string): boolean {
  const a = utf8.encode(given);
  const b = utf8.encode(secret);
  // Compared anyway, so that a guess of the wrong length takes as long as a wrong guess.
  if (a.length !== b.length) return !timingSafeEqual(b, b);
  return timingSafeEqual(a, b);
}

/** Whether `given` is one of `secrets`; every one is compared, so timing does not say which. */
export function isOneOf(given: string, secrets: readonly string[]): boolean {
  let found = false;
  for (const secret of secrets) found = sameSecret(given, secret) || found;
  return found;
}
