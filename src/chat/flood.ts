/**
 * Flood control: a token bucket per connection, plus the memory of when the
 * current flood began so a client that never slows down can be let go.
 *
 * @module
 */

import type { FloodLimits } from "../config/mod.ts";

/** What to do with one message: pass it, or drop it (warning first, closing at last). */
export type FloodVerdict = "accept" | "warn" | "drop" | "disconnect";

/** One connection's token bucket. Times are milliseconds from any fixed origin. */
export class FloodGuard {
  readonly #limits: FloodLimits;
  #tokens: number;
  #updatedAt: number;
  /** When the first message of the current flood was dropped. */
  #floodingSince: number | undefined;

  constructor(limits: FloodLimits, now: number) {
    this.#limits = limits;
    this.#tokens = limits.burst;
    this.#updatedAt = now;
  }

  /** Spends a token for a message arriving at `now`, and says what to do with it. */
  check(now: number): FloodVerdict {
    const { rate, burst, disconnectAfter } = this.#limits;
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(burst, this.#tokens + (elapsed / 1000) * rate);
    this.#updatedAt = now;
    // A flood ends only once the client has been quiet long enough to refill
    // the bucket; a client that keeps pushing at the limit stays flooding.
    if (this.#tokens >= burst) this.#floodingSince = undefined;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return "accept";
    }
    if (this.#floodingSince === undefined) {
      this.#floodingSince = now;
      return "warn";
    }
    return now - this.#floodingSince >= disconnectAfter * 1000 ? "disconnect" : "drop";
  }
}
