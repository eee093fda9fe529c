/**
 * Configuration errors: one line naming where the value came from, what is
 * wrong and the fix.
 *
 * @module
 */

/** A configuration problem an operator can fix; the message says how. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Stops the start: `what` (a key in a file, a flag, a variable) and its `problem`. */
export function fail(what: string, problem: string): never {
  throw new ConfigError(`Cannot start server as ${what} ${problem}`);
}
