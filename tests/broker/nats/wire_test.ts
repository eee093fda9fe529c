import { assertEquals, assertThrows } from "@std/assert";
import { DecodeError } from "../../../src/broker/decode.ts";
import { readRoomNotes } from "../../../src/broker/nats/wire.ts";

const note = {
  kind: "message",
  room: "lobby",
  id: "a1.1",
  sentAt: 1,
  author: { instance: "a1", userId: 1, name: "Ann" },
  text: "hi",
  emote: false,
};

Deno.test("readRoomNotes: numbered batches, bare lists, and what is refused", async (t) => {
  await t.step("a numbered batch gives its publisher and number", () => {
    const batch = readRoomNotes(JSON.stringify({ from: "a1", n: 7, notes: [note] }), "lobby");
    assertEquals([batch.from, batch.n, batch.notes.length], ["a1", 7, 1]);
  });

  await t.step("a bare list (from before batches were numbered) has no number", () => {
    const batch = readRoomNotes(JSON.stringify([note]), "Lobby");
    assertEquals([batch.from, batch.n, batch.notes[0].id], [undefined, undefined, "a1.1"]);
  });

  for (
    const [what, data] of [
      ["a number below 1", { from: "a1", n: 0, notes: [note] }],
      ["a number that is not whole", { from: "a1", n: 1.5, notes: [note] }],
      ["no publisher", { n: 1, notes: [note] }],
      ["no notes", { from: "a1", n: 1, notes: [] }],
      ["a note of another room", { from: "a1", n: 1, notes: [{ ...note, room: "ops" }] }],
    ] as const
  ) {
    await t.step(`refused: ${what}`, () => {
      assertThrows(() => readRoomNotes(JSON.stringify(data), "lobby"), DecodeError);
    });
  }
});
