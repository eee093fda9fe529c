/**
 * Wrong guesses of a secret, by whoever made them (a session, an address):
 * a few are free, then each one makes its maker wait before the next guess,
 * the wait doubling with every further wrong guess up to a bound. A wait
 * always ends, so the right secret is never refused for good; a maker quiet
 * long enough is forgotten.
 *
 * @module
 */

/** How many wrong guesses are free, and how the waits after them grow. */
export interface GuessPolicy {
  /** Wrong guesses a maker may make before any wait. */
  readonly free: number;
  /** The wait after the last free wrong guess (milliseconds); each further one doubles it... */
  readonly firstWait: number;
  /** ...up to this (milliseconds). */
  readonly maxWait: number;
  /** A maker with no wrong guess for this long (milliseconds) starts afresh. */
  readonly forgetAfter: number;
}

/** One maker's wrong guesses. */
interface Tally {
  wrong: number;
  last: number;
  until: number;
}

/** Wrong guesses by maker; times are milliseconds from any fixed origin. */
export class Guesses {
  readonly #policy: GuessPolicy;
  readonly #records = new Map<string, Tally>();

  constructor(policy: GuessPolicy) {
    const { free, firstWait, maxWait, forgetAfter } = policy;
    if (!(free >= 1 && firstWait > 0 && maxWait >= firstWait && forgetAfter > maxWait)) {
      throw new RangeError(
        "Cannot count guesses as the policy needs free >= 1 and 0 < firstWait <= maxWait < forgetAfter",
      );
    }
    this.#policy = policy;
  }

  /** How long `maker` must still wait at `now` before guessing (milliseconds); 0: it may guess. */
  wait(maker: string, now: number): number {
    const record = this.#fresh(maker, now);
    return record === undefined ? 0 : Math.max(0, record.until - now);
  }

  /** Counts a wrong guess of `maker` at `now`, and starts its wait when its free ones are spent. */
  wrong(maker: string, now: number): void {
    const { free, firstWait, maxWait } = this.#policy;
    const record = this.#fresh(maker, now) ?? { wrong: 0, last: now, until: now };
    record.wrong++;
    record.last = now;
    if (record.wrong >= free) {
      // Capped before doubling, so that no number grows without bound.
      const doublings = Math.min(record.wrong - free, Math.ceil(Math.log2(maxWait / firstWait)));
      record.until = now + Math.min(maxWait, firstWait * 2 ** doublings);
    }
    this.#records.set(maker, record);
  }

  /** Forgets `maker`'s wrong guesses (it guessed right). */
  forget(maker: string): void {
    this.#records.delete(maker);
  }

  /** Forgets the makers quiet long enough at `now`. */
  sweep(now: number): void {
    for (const maker of this.#records.keys()) this.#fresh(maker, now);
  }

  /** `maker`'s record, unless it was quiet long enough to be forgotten at `now`. */
  #fresh(maker: string, now: number): Tally | undefined {
    const record = this.#records.get(maker);
    if (record !== undefined && now - record.last >= this.#policy.forgetAfter) {
      this.#records.delete(maker);
      return undefined;
    }
    return record;
  }
}
