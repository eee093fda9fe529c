/**
 * User names: generation, validation and the key two names are compared by
 * (see `confusables.ts`).
 *
 * @module
 */

import { identifierProblem, lookAlikeKey, nameKey } from "./confusables.ts";
import { ADJECTIVES, ANIMALS } from "./words.ts";

export { lookAlikeKey, nameKey };

/**
 * The keys under which `names` are reserved: both keys of each, spelled in
 * small letters, in capitals and capitalized (so `ADMIN` in another
 * script's look-alike capitals is reserved too).
 */
export function reservedKeys(names: readonly string[]): Set<string> {
  const keys = new Set<string>();
  for (const name of names) {
    const capitalized = name.charAt(0).toUpperCase() + name.slice(1).toLowerCase();
    keys.add(nameKey(name));
    for (const spelling of [name.toLowerCase(), name.toUpperCase(), capitalized]) {
      keys.add(lookAlikeKey(spelling));
    }
  }
  return keys;
}

/** The longest name a user may take, in code points. */
export const MAX_NAME_LENGTH = 32;

/** Letters, digits, "_", "-" and "."; combining marks may follow a letter. */
const NAME_PATTERN = /^[\p{L}\p{N}_.-][\p{L}\p{M}\p{N}_.-]*$/u;

/**
 * Returns why `name` cannot be a user name, or `undefined` when it can.
 * `reserved` holds the keys of names nobody may take (see {@linkcode reservedKeys}).
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
  if (reserved.has(nameKey(name)) || reserved.has(lookAlikeKey(name))) return "it is reserved";
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
