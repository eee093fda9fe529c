import { assert, assertEquals, assertThrows } from "@std/assert";
import { DecodeError } from "../../../src/broker/decode.ts";
import { readPrivateNote, readTakeoverReply } from "../../../src/broker/nats/wire.ts";
import { readRoomNotes, writeRoomBatch } from "../../../src/broker/nats/batch.ts";
import type { RoomNote } from "../../../src/broker/types.ts";

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
    const batch = readRoomNotes(JSON.stringify({ from: "a1", n: 7, notes: [note] }), "lobby", 100);
    assertEquals([batch.from, batch.n, batch.notes.length], ["a1", 7, 1]);
  });

  await t.step("a bare list (from before batches were numbered) has no number", () => {
    const batch = readRoomNotes(JSON.stringify([note]), "Lobby", 100);
    assertEquals([batch.from, batch.n, batch.notes[0]?.id], [undefined, undefined, "a1.1"]);
  });

  for (
    const [what, data] of [
      ["a number below 1", { from: "a1", n: 0, notes: [note] }],
      ["a number that is not whole", { from: "a1", n: 1.5, notes: [note] }],
      ["no publisher", { n: 1, notes: [note] }],
      ["a publisher id longer than any instance's", { from: "a".repeat(65), n: 1, notes: [note] }],
      ["no notes", { from: "a1", n: 1, notes: [] }],
      ["a note of another room", { from: "a1", n: 1, notes: [{ ...note, room: "ops" }] }],
      // Seqs are the stream's times 1000 plus the place: 1,001 notes would number two alike.
      ["more notes than an instance sends", { from: "a1", n: 1, notes: Array(257).fill(note) }],
    ] as const
  ) {
    await t.step(`refused: ${what}`, () => {
      assertThrows(() => readRoomNotes(JSON.stringify(data), "lobby", 100), DecodeError);
    });
  }

  await t.step("a note past the limits is left out alone, its place kept", () => {
    const long = { ...note, id: "a1.2", text: "ab".repeat(51) };
    const emoji = { ...note, id: "a1.3", text: "😀".repeat(101) };
    const named = { ...note, id: "a1.4", author: { ...note.author, name: "n".repeat(65) } };
    const batch = readRoomNotes(
      JSON.stringify({ from: "a1", n: 1, notes: [long, note, emoji, named] }),
      "lobby",
      100,
    );
    assertEquals(batch.notes.map((read) => read?.id), [undefined, "a1.1", undefined, undefined]);
    assertEquals(batch.refused.length, 3);
  });

  await t.step("max_message_len counts characters: 100 emoji pass", () => {
    const batch = readRoomNotes(
      JSON.stringify({ from: "a1", n: 1, notes: [{ ...note, text: "😀".repeat(100) }] }),
      "lobby",
      100,
    );
    assertEquals(batch.notes.length, 1);
  });
});

Deno.test("writeRoomBatch: every kind of note reads back as written, in fewer bytes", () => {
  const ann = { instance: "a1", userId: 1, name: "Ann" };
  const notes: RoomNote[] = [
    {
      kind: "message",
      room: "Lobby",
      id: "a1.1",
      sentAt: 1,
      author: ann,
      text: "hi",
      emote: false,
    },
    {
      kind: "message",
      room: "lobby",
      id: "a1.2",
      sentAt: 2,
      author: ann,
      text: "waves",
      emote: true,
    },
    {
      kind: "message",
      room: "Lobby",
      id: "a1.3",
      sentAt: 3,
      author: ann,
      text: "hello",
      emote: false,
      change: { target: "a1.1", action: "edit", author: "Ann" },
    },
    {
      kind: "presence",
      room: "Lobby",
      id: "a1.4",
      sentAt: 4,
      author: { ...ann, name: "Anna" },
      action: "rename",
      notice: "renamed",
      oldName: "Ann",
    },
    {
      kind: "presence",
      room: "Lobby",
      id: "a1.5",
      sentAt: 5,
      author: { instance: "b2", userId: 7, name: "Bob" },
      action: "leave",
      notice: "kicked",
      by: "Ann",
      reason: "spam",
    },
  ];
  const json = writeRoomBatch("a1", 3, notes);
  const read = readRoomNotes(json, "lobby", 100);
  assertEquals([read.from, read.n, read.refused], ["a1", 3, []]);
  assertEquals(read.notes, notes.map((note) => roomNoteShape(note)));
  // Ordinary messages, the bulk of what a busy room sends, take less than half the bytes.
  const said = Array.from({ length: 100 }, (_, i): RoomNote => ({
    kind: "message",
    room: "lobby",
    id: `a1.${i}`,
    sentAt: 1_733_000_000_000 + i,
    author: { instance: "a1", userId: i % 8, name: `Talker${i % 8}` },
    text: `message ${i} of the round`,
    emote: false,
  }));
  const packed = writeRoomBatch("a1", 1, said).length;
  const whole = JSON.stringify({ from: "a1", n: 1, notes: said }).length;
  assert(packed < whole / 2, `${packed} against ${whole}`);

  const inbox: RoomNote = {
    kind: "message",
    room: "@Bob",
    id: "a1.6",
    sentAt: 6,
    author: ann,
    text: "psst",
    emote: false,
    to: "Bob",
  };
  assertEquals(readRoomNotes(writeRoomBatch("a1", 1, [inbox]), "@Bob", 100).notes, [inbox]);
});

Deno.test("readRoomNotes: what a packed batch may not hold", async (t) => {
  const packed = { i: "a1.1", t: 1, u: 1, a: "Ann", x: "hi" };
  const batch = (m: unknown[], more: Record<string, unknown> = {}) =>
    JSON.stringify({ from: "a1", n: 1, room: "lobby", m, ...more });
  await t.step("a note of an unknown kind, or an emote flag but 1, is left out alone", () => {
    const read = readRoomNotes(
      batch([{ ...packed, k: "q" }, packed, { ...packed, e: true }, {
        ...packed,
        x: "x".repeat(101),
      }]),
      "lobby",
      100,
    );
    assertEquals(read.notes.map((note) => note?.id), [undefined, "a1.1", undefined, undefined]);
    assertEquals(read.refused.length, 3);
  });
  for (
    const [what, data] of [
      ["no notes", batch([])],
      ["more notes than an instance sends", batch(Array(257).fill(packed))],
      ["a note of another room", batch([{ ...packed, r: "ops" }])],
      ["a batch of another room", batch([packed], { room: "ops" })],
    ] as const
  ) {
    await t.step(`refused: ${what}`, () => {
      assertThrows(() => readRoomNotes(data, "lobby", 100), DecodeError);
    });
  }
  await t.step("a batch whose room is not a name leaves every note out", () => {
    const read = readRoomNotes(batch([packed], { room: 7 }), "lobby", 100);
    assertEquals(read.notes, [undefined]);
  });
});

/** A note as the reader gives it back: a presence note's missing details are there, undefined. */
function roomNoteShape(note: RoomNote): RoomNote {
  return note.kind === "presence"
    ? { oldName: undefined, by: undefined, reason: undefined, ...note }
    : note;
}

Deno.test("readPrivateNote: a text longer than any user could send is refused", () => {
  const pm = { id: "a1.2", sentAt: 1, from: "Ann", to: "Bob", text: "x".repeat(100) };
  assertEquals(readPrivateNote(JSON.stringify(pm), 100).text.length, 100);
  assertThrows(
    () => readPrivateNote(JSON.stringify({ ...pm, text: "x".repeat(101) }), 100),
    DecodeError,
  );
});

Deno.test("readRoomNotes: an inbox holds private messages and nothing else", () => {
  const kept = { ...note, room: "@Bob", to: "Bob" };
  const read = (notes: unknown[]) =>
    readRoomNotes(JSON.stringify({ from: "a1", n: 1, notes }), "@Bob", 100);
  const first = read([kept]).notes[0];
  assertEquals(first?.kind === "message" ? first.to : undefined, "Bob");
  const refused = [
    { ...note, room: "@Bob" },
    { ...kept, change: { target: "a1.0", action: "delete", author: "Ann" } },
    { ...kept, to: "n".repeat(65) },
    {
      kind: "presence",
      room: "@Bob",
      id: "a1.2",
      sentAt: 1,
      author: note.author,
      action: "join",
      notice: "joined",
    },
  ];
  assertEquals(read(refused).notes, [undefined, undefined, undefined, undefined]);
  // An inbox is its account's exactly: a look-alike account's is another log.
  assertThrows(() => read([{ ...kept, room: "@BOB", to: "BOB" }]), DecodeError);
  // A room's message says nobody it is for.
  assertEquals(
    readRoomNotes(JSON.stringify([{ ...note, to: "Bob" }]), "lobby", 100).notes,
    [undefined],
  );
});

Deno.test("readTakeoverReply: what the session read comes along, checked", () => {
  const reply = { ok: true, room: "lobby", privates: [] };
  const read = readTakeoverReply(
    JSON.stringify({ ...reply, read: { games: { epoch: "e1", seq: 2 } } }),
    100,
  );
  assertEquals(read.ok ? [...(read.read ?? [])] : [], [["games", { epoch: "e1", seq: 2 }]]);
  assertEquals(readTakeoverReply(JSON.stringify(reply), 100), { ...reply, read: undefined });
  assertThrows(
    () => readTakeoverReply(JSON.stringify({ ...reply, read: { games: { seq: -1 } } }), 100),
    DecodeError,
  );
});
