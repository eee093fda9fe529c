/**
 * Event times as the wire formats write them.
 *
 * @module
 */

let lastTime = NaN;
let lastText = "";

/**
 * `date` in ISO 8601 (UTC, milliseconds). The last one is remembered: the
 * events of a burst share their millisecond, and formatting a date costs
 * more than the rest of an event's JSON.
 */
export function isoTime(date: Date): string {
  const time = date.getTime();
  if (time !== lastTime) {
    lastText = date.toISOString();
    lastTime = time;
  }
  return lastText;
}
