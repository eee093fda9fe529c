/**
 * User names: generation, validation and the key two names are compared by
 * (see `confusables.ts`).
 *
 * @module
 */

import { comparisonKeys, identifierProblem, nameKey } from "./confusables.ts";
import { truncateText } from "./sanitize.ts";
import { ADJECTIVES, ANIMALS } from "./words.ts";

export { comparisonKeys, nameKey };

/**
 * The {@linkcode comparisonKeys} under which `names` are reserved: those of
 * each name spelled in small letters too, so a look-alike of `admin` in any
 * case is reserved.
 */
export function reservedKeys(names: readonly string[]): Set<string> {
  const keys = new Set<string>();
  for (const name of names) {
    for (const spelling of [name, name.toLowerCase()]) {
      for (const key of comparisonKeys(spelling)) keys.add(key);
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

/** Whether `a` and `b` are one name to the eye: they share a {@linkcode comparisonKeys} key. */
export function looksLike(a: string, b: string): boolean {
  const keys = comparisonKeys(b);
  return comparisonKeys(a).some((key) => keys.includes(key));
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
  if (comparisonKeys(name).some((key) => reserved.has(key))) return "it is reserved";
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
