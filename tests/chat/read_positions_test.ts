/** A session's read positions: merged from its devices, and bounded to what a handover carries. */

import { assertEquals } from "@std/assert";
import { ReadPositions } from "../../src/chat/read_positions.ts";
import { MAX_SEEN_ROOMS, type SeenPosition } from "../../src/vocabulary/arguments.ts";

const room = (name: string) => ({ name, epoch: "e", lastSeq: 10 });
const seenIn = (names: string[]) =>
  new Map<string, SeenPosition>(names.map((name) => [name, { epoch: "e", seq: 5 }]));

Deno.test("a session keeps at most as many read positions as one request may report", () => {
  const positions = new ReadPositions();
  const names = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => `room${from + i}`);
  // Two devices report rooms enough to pass the bound together (max_rooms above its default).
  positions.merge(seenIn(names(0, MAX_SEEN_ROOMS - 1)), room);
  positions.merge(seenIn(names(MAX_SEEN_ROOMS - 1, 200)), room);
  assertEquals(positions.all.size, MAX_SEEN_ROOMS);
  // A room kept is still moved forward.
  positions.merge(new Map([["room0", { epoch: "e", seq: 9 }]]), room);
  assertEquals(positions.all.get("room0"), { epoch: "e", seq: 9 });
});
