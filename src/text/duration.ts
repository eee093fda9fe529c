/**
 * Durations as moderators type them (`90s`, `10m`, `2h`, `7d`, `1w`, or bare
 * seconds) and as users read them (`10 minutes`).
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** The longest mute or ban: a year. */
export const MAX_DURATION_SECONDS = 365 * 86_400;

/** Seconds in `text` (`90s`, `10m`, `2h`, `7d`, `1w`, `600`), or `undefined` when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhdw]?)$/i.exec(text.trim());
  if (match === null) return undefined;
  const seconds = Number(match[1]) * UNITS[(match[2] || "s").toLowerCase()];
  return seconds >= 1 && seconds <= MAX_DURATION_SECONDS ? seconds : undefined;
}

/** `seconds` in the largest whole unit that fits, rounded up: `10 minutes`, `1 day`. */
export function formatDuration(seconds: number): string {
  const names: [number, string][] = [
    [604_800, "week"],
    [86_400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  const whole = Math.max(1, Math.ceil(seconds));
  const [size, name] = names.find(([size]) => whole >= size && whole % size === 0) ??
    names.find(([size]) => whole >= size) ?? [1, "second"];
  const count = Math.ceil(whole / size);
  return `${count} ${name}${count === 1 ? "" : "s"}`;
}

/** The longest slow mode: an hour between one user's messages. */
export const MAX_SLOW_SECONDS = 3600;
