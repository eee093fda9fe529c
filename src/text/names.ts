/**
 * User names: generation, validation and the key two names are compared by
 * (see `confusables.ts`).
 *
 * @module
 */

import { identifierProblem, lookAlikeKey, nameKey } from "./confusables.ts";
import { truncateText } from "./sanitize.ts";
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

/**
 * The longest text read as a name or a room, in UTF-16 code units (a name
 * of 32 code points takes at most 64): longer text is refused unread, before
 * any normalizing, lookup or pattern, which would cost more the longer it is.
 */
export const MAX_NAME_UNITS = 2 * MAX_NAME_LENGTH;

/** What is shown of text given as a name or room that is none: no more than a name's length and one. */
export function shownName(text: string): string {
  return truncateText(text, MAX_NAME_LENGTH + 1);
}

/** Whether `a` and `b` name the same (room or user), comparing only what can be a name. */
export function sameName(a: string, b: string): boolean {
  return a.length <= MAX_NAME_UNITS && b.length <= MAX_NAME_UNITS && nameKey(a) === nameKey(b);
}

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
