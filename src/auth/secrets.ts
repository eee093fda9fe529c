/**
 * Comparing secrets (session tokens, the operator password, API keys) in
 * time that does not depend on where they differ, so timing tells an
 * attacker nothing about how close a guess was.
 *
 * @module
 */

/** Whether `a` and `b` are the same text, in time that depends only on their lengths. */
export function sameSecret(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let difference = left.length ^ right.length;
  for (let index = 0; index < left.length; index++) {
    difference |= left[index] ^ (right[index % right.length] ?? 0);
  }
  return difference === 0;
}

/** Whether `given` is one of `secrets`; every one is compared, so timing does not say which. */
export function isOneOf(given: string, secrets: readonly string[]): boolean {
  let found = false;
  for (const secret of secrets) found = sameSecret(given, secret) || found;
  return found;
}
