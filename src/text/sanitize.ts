/**
 * Making client text safe to keep and show.
 *
 * @module
 */

/** Control and format characters other than tab: line breaks, bells, bidi overrides, zero-widths. */
const UNSAFE_CHARACTERS = /(?!\t)[\p{Cc}\p{Cf}]/gu;

/**
 * The combining marks after the third on one character: enough for every
 * script's spelling (Tibetan stacks three), the rest only paints over the
 * lines around it ("Zalgo" text).
 */
const STACKED_MARKS = /(?<=\p{M}{3})\p{M}+/gu;

/**
 * Makes client text safe to show: unpaired surrogates become U+FFFD,
 * control and format characters (except tab) are removed, and no character
 * carries more than three combining marks.
 */
export function cleanText(text: string): string {
  // Most text is printable ASCII, which a loop clears faster than the regular expressions.
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0x20 || unit > 0x7e) {
      return text.toWellFormed().replace(UNSAFE_CHARACTERS, "").replace(STACKED_MARKS, "");
    }
  }
  return text;
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
