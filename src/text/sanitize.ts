/**
 * Making client text safe to keep and show.
 *
 * @module
 */

/** Control and format characters other than tab: line breaks, bells, bidi overrides, zero-widths. */
const UNSAFE_CHARACTERS = /(?!\t)[\p{Cc}\p{Cf}]/gu;

/**
 * The combining marks after the sixth on one character: enough for every
 * script's spelling (Hebrew with cantillation, a Tibetan stack with its
 * vowels: five), the rest only paints over the lines around it ("Zalgo").
 */
const STACKED_MARKS = /(?<=\p{M}{6})\p{M}+/gu;

/**
 * Makes client text safe to show: unpaired surrogates become U+FFFD and
 * control and format characters (except tab) are removed.
 */
export function cleanText(text: string): string {
  // Most text is printable ASCII, which a loop clears faster than the regular expression.
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0x20 || unit > 0x7e) return text.toWellFormed().replace(UNSAFE_CHARACTERS, "");
  }
  return text;
}

/**
 * Chat text with no character carrying more than six combining marks (a
 * name with more is refused instead, saying why).
 */
export function trimMarks(text: string): string {
  return text.replace(STACKED_MARKS, "");
}

/** Cuts `text` to at most `max` code points, never splitting a surrogate pair. */
export function truncateText(text: string, max: number): string {
  // A string's UTF-16 length is never below its code point count.
  if (text.length <= max) return text;
  let end = 0;
  for (let count = 0; count < max && end < text.length; count++) {
    const unit = text.charCodeAt(end);
    // A high surrogate starts a pair; cleaned text has no unpaired ones.
    end += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
  }
  return text.slice(0, end);
}

/** Removes every whitespace character, as names are taken (`!setname Big Bird` is `BigBird`). */
export function stripWhitespace(text: string): string {
  return text.replace(/\s+/gu, "");
}
