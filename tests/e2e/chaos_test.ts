/**
 * Repeated crashes never tear the history store: short schedules of the
 * chaos harness (`scripts/chaos.ts`; `deno task chaos` runs longer ones):
 * eight kills, SIGKILL and SIGTERM, at seeded instants mid-burst; then the
 * same with the disk filling up and freed again in some lives.
 */

import { assertEquals } from "@std/assert";
import { type ChaosOptions, runChaos } from "../../scripts/chaos.ts";
import { canMountTmpfs } from "./_tmpfs.ts";

const SEED = Number(Deno.env.get("CHAOS_SEED") ?? "7");
const SCHEDULE: ChaosOptions = { kills: 8, seed: SEED, seconds: 1.2, rooms: 3, term: true };

async function holds(options: ChaosOptions): Promise<void> {
  const report = await runChaos(options);
  assertEquals(report.problems, [], `seed ${options.seed}: ${report.problems.join("; ")}`);
  assertEquals(report.stored > 0, true);
  assertEquals(report.fills > 0, options.full === true, "the disk filled in some life");
}

Deno.test({
  name: "eight kills mid-burst leave a history every client can trust",
  sanitizeResources: false,
  fn: () => holds(SCHEDULE),
});

Deno.test({
  name: "eight kills, and a disk that fills and frees mid-burst, lose only what users were told of",
  ignore: !canMountTmpfs("the chaos test with a full disk"),
  sanitizeResources: false,
  fn: () => holds({ ...SCHEDULE, full: true }),
});
