/**
 * User names: generation, validation and the key two names are compared by
 * (see `identifiers.ts`).
 *
 * @module
 */

import { identifierProblem, nameKey } from "./identifiers.ts";
import { ADJECTIVES, ANIMALS } from "./words.ts";

export { nameKey };

/** The longest name a user may take, in code points. */
export const MAX_NAME_LENGTH = 32;

/** Letters, digits, "_", "-" and "."; combining marks may follow a letter. */
const NAME_PATTERN = /^[\p{L}\p{N}_.-][\p{L}\p{M}\p{N}_.-]*$/u;

/**
 * Returns why `name` cannot be a user name, or `undefined` when it can.
 * `reserved` holds the {@linkcode nameKey}s of names nobody may take.
 */
export function nameProblem(
  name: string,
  reserved: ReadonlySet<string> = new Set(),
): string | undefined {
  const length = [...name].length;
  if (length === 0) return "it is empty";
  if (length > MAX_NAME_LENGTH) return `it is longer than ${MAX_NAME_LENGTH} characters`;
  const problem = identifierProblem(name);
  if (problem !== undefined) return problem;
  if (!NAME_PATTERN.test(name)) {
    return 'it may only contain letters, digits, "_", "-" and "."';
  }
  if (reserved.has(nameKey(name))) return "it is reserved";
  return undefined;
}

/**
 * Makes an Adjective+Animal name that `isTaken` does not refuse. When the
 * random pair is taken, a number is added, so the result never collides.
 */
export function generateName(
  isTaken: (name: string) => boolean,
  random: () => number = Math.random,
): string {
  const pick = (words: readonly string[]): string => words[Math.floor(random() * words.length)];
  const base = pick(ADJECTIVES) + pick(ANIMALS);
  if (!isTaken(base)) return base;
  for (let suffix = 2;; suffix++) {
    const name = `${base}${suffix}`;
    if (!isTaken(name)) return name;
  }
}
