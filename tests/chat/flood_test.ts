import { assertEquals } from "@std/assert";
import { FloodGuard, type FloodVerdict } from "../../src/chat/flood.ts";

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
