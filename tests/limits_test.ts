import { assertEquals } from "@std/assert";
import {
  Buckets,
  FloodGuard,
  type FloodVerdict,
  Limiter,
  TokenBucket,
  worse,
} from "../src/limits.ts";

const limits = { rate: 2, burst: 3, disconnectAfter: 5 };

/** The verdicts for messages at these times (milliseconds). */
function verdicts(times: number[]): FloodVerdict[] {
  const guard = new FloodGuard(limits, 0);
  return times.map((time) => guard.check(time));
}

Deno.test("FloodGuard", async (t) => {
  await t.step("lets a burst through, then warns once and drops", () => {
    assertEquals(verdicts([0, 0, 0, 0, 0, 0]), [
      "accept",
      "accept",
      "accept",
      "warn",
      "drop",
      "drop",
    ]);
  });

  await t.step("returns tokens at the configured rate", () => {
    assertEquals(verdicts([0, 0, 0, 0, 499, 500, 501]), [
      "accept",
      "accept",
      "accept",
      "warn",
      "drop",
      "accept",
      "drop",
    ]);
  });

  await t.step("a client steady at the rate is never flooding", () => {
    const times = Array.from({ length: 100 }, (_, i) => i * 500);
    assertEquals(new Set(verdicts(times)), new Set(["accept"]));
  });

  await t.step("closes a client that keeps flooding for disconnectAfter seconds", () => {
    const guard = new FloodGuard(limits, 0);
    for (let i = 0; i < 3; i++) guard.check(0);
    assertEquals(guard.check(0), "warn");
    // Pushing faster than the rate: some messages pass, but the flood goes on.
    const seen = new Set<FloodVerdict>();
    for (let time = 100; time < 5000; time += 100) {
      for (let i = 0; i < 3; i++) seen.add(guard.check(time));
    }
    assertEquals(seen, new Set<FloodVerdict>(["accept", "drop"]));
    assertEquals([guard.check(5000), guard.check(5000)], ["accept", "disconnect"]);
  });

  await t.step("a flood ends once the bucket has refilled, and the next one warns again", () => {
    const guard = new FloodGuard(limits, 0);
    for (let i = 0; i < 3; i++) guard.check(0);
    assertEquals(guard.check(0), "warn");
    assertEquals(guard.check(1500), "accept");
    assertEquals([guard.check(1500), guard.check(1500), guard.check(1500)], [
      "accept",
      "accept",
      "warn",
    ]);
  });
});

Deno.test("TokenBucket", async (t) => {
  await t.step("starts full, empties, and refills at the rate up to the burst", () => {
    const bucket = new TokenBucket({ rate: 1, burst: 2 }, 0);
    assertEquals([bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, false]);
    assertEquals([bucket.available(999), bucket.available(1000)], [false, true]);
    assertEquals(bucket.full(1999), false);
    assertEquals(bucket.full(10_000), true);
    assertEquals([bucket.take(10_000), bucket.take(10_000), bucket.take(10_000)], [
      true,
      true,
      false,
    ]);
  });

  await t.step("a clock that goes back gives nothing back", () => {
    const bucket = new TokenBucket({ rate: 1, burst: 1 }, 5000);
    assertEquals([bucket.take(5000), bucket.take(1000)], [true, false]);
  });
});

Deno.test("worse picks the harsher verdict", () => {
  const order: FloodVerdict[] = ["accept", "drop", "warn", "disconnect"];
  for (const [i, a] of order.entries()) {
    for (const [j, b] of order.entries()) assertEquals(worse(a, b), order[Math.max(i, j)]);
  }
});

Deno.test("Buckets keep one bucket per key and forget the full ones", () => {
  const buckets = new Buckets((now) => new Limiter({ rate: 1, burst: 1 }, now));
  assertEquals(buckets.get("a", 0).take(0), true);
  assertEquals(buckets.get("a", 0).take(0), false, "the same bucket again");
  assertEquals(buckets.get("b", 0).take(0), true, "another key has its own");
  buckets.sweep(500);
  assertEquals(buckets.get("a", 500).take(500), false, "not yet full: still remembered");
  buckets.sweep(2000);
  const fresh = buckets.get("a", 2000);
  assertEquals([fresh.take(2000), fresh.take(2000)], [true, false]);
});
