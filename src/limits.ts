/**
 * Rate limits: a token bucket, and flood control built on it (per connection
 * and per client address), which remembers when a flood began so a client
 * that never slows down can be let go.
 *
 * @module
 */

/** How fast tokens come back, and how many a quiet holder saves up. */
export interface Rate {
  /** Tokens returned per second. */
  readonly rate: number;
  /** Tokens a quiet holder saves up. */
  readonly burst: number;
}

/** A token bucket. Times are milliseconds from any fixed origin. */
export class TokenBucket {
  readonly #limits: Rate;
  #tokens: number;
  #updatedAt: number;

  constructor(limits: Rate, now: number) {
    this.#limits = limits;
    this.#tokens = limits.burst;
    this.#updatedAt = now;
  }

  /** Takes `count` tokens at `now`; false (taking none) when there are fewer. */
  take(now: number, count = 1): boolean {
    this.#refill(now);
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  /** Whether a token could be taken at `now`, without taking it. */
  available(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= 1;
  }

  /** Whether the bucket is full at `now`: its holder has been quiet long enough. */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#limits.burst;
  }

  #refill(now: number): void {
    const { rate, burst } = this.#limits;
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(burst, this.#tokens + (elapsed / 1000) * rate);
    this.#updatedAt = now;
  }
}

/** What to do with one message: pass it, or drop it (warning first, closing at last). */
export type FloodVerdict = "accept" | "warn" | "drop" | "disconnect";

/** How bad each verdict is, to combine two. */
const SEVERITY: Readonly<Record<FloodVerdict, number>> = {
  accept: 0,
  drop: 1,
  warn: 2,
  disconnect: 3,
};

/** The worse of two verdicts. */
export function worse(a: FloodVerdict, b: FloodVerdict): FloodVerdict {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

/** A token bucket for messages, with the memory of the current flood. */
export class FloodGuard {
  readonly #bucket: TokenBucket;
  readonly #disconnectAfterMs: number;
  /** When the first message of the current flood was dropped. */
  #floodingSince: number | undefined;

  constructor(limits: Rate & { readonly disconnectAfter: number }, now: number) {
    this.#bucket = new TokenBucket(limits, now);
    this.#disconnectAfterMs = limits.disconnectAfter * 1000;
  }

  /** Spends a token for a message arriving at `now`, and says what to do with it. */
  check(now: number): FloodVerdict {
    // A flood ends only once the client has been quiet long enough to refill
    // the bucket; a client that keeps pushing at the limit stays flooding.
    if (this.#bucket.full(now)) this.#floodingSince = undefined;
    if (this.#bucket.take(now)) return "accept";
    if (this.#floodingSince === undefined) {
      this.#floodingSince = now;
      return "warn";
    }
    return now - this.#floodingSince >= this.#disconnectAfterMs ? "disconnect" : "drop";
  }

  /** Whether nothing is remembered at `now`: the bucket is full again. */
  idle(now: number): boolean {
    return this.#bucket.full(now);
  }
}

/**
 * Token buckets by key (a client address, a user), made on first use and
 * forgotten once full again, so the map holds only who was busy lately.
 */
export class Buckets<T extends { idle(now: number): boolean }> {
  readonly #make: (now: number) => T;
  readonly #buckets = new Map<string, T>();

  constructor(make: (now: number) => T) {
    this.#make = make;
  }

  get(key: string, now: number): T {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) this.#buckets.set(key, bucket = this.#make(now));
    return bucket;
  }

  /** Forgets the buckets that are full again at `now`. */
  sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.idle(now)) this.#buckets.delete(key);
    }
  }
}

/** A {@linkcode TokenBucket} that {@linkcode Buckets} can forget when full. */
export class Limiter extends TokenBucket {
  idle(now: number): boolean {
    return this.full(now);
  }
}
