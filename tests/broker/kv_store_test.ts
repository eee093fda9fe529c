/** The history store's writes stay within one Deno KV atomic operation, whatever it holds. */

import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { KvStore, type StoredRoom } from "../../src/broker/kv_store.ts";
import { LocalBroker } from "../../src/broker/local.ts";
import type { MessageNote } from "../../src/broker/types.ts";
import { watchStalls } from "../_stalls.ts";

/** A valid room name whose key is as long as any: U+FDFA folds to 18 characters. */
const LONG = "\uFDFA".repeat(32);

const room = (lastSeq: number, name = LONG): StoredRoom => ({
  name,
  life: "0000life",
  epoch: "0000life",
  lastSeq,
});

const note = (seq: number, text = `message ${seq}`, name = LONG): MessageNote => ({
  kind: "message",
  room: name,
  id: `test.${seq}`,
  sentAt: seq,
  author: { instance: "test", userId: 1, name: "Ann" },
  text,
  emote: false,
});

async function pagesIn(path: string): Promise<number> {
  const kv = await Deno.openKv(path);
  try {
    let pages = 0;
    for await (const _ of kv.list({ prefix: ["msg"] })) pages++;
    return pages;
  } finally {
    kv.close();
  }
}

Deno.test("a lowered history_size: old pages go over later writes, long keys and all", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "history.kv");
  try {
    const roomy = await KvStore.open(path, 2000);
    await roomy.load();
    for (let seq = 1; seq <= 1500; seq++) {
      await roomy.commit(roomy.plan({
        rooms: [{ room: room(seq), messages: [{ note: note(seq), seq }] }],
        settles: true,
      }));
    }
    roomy.close();
    assertEquals(await pagesIn(path), 1500);

    const small = await KvStore.open(path, 10);
    await small.load();
    // Each write deletes as many old pages as its limits leave room for (keys of about 1.7 KB).
    for (let seq = 1501; seq <= 1560; seq++) {
      const plan = small.plan({
        rooms: [{ room: room(seq), messages: [{ note: note(seq), seq }] }],
        settles: true,
      });
      assertEquals(plan.fits, true);
      await small.commit(plan);
    }
    small.close();
    assertEquals(await pagesIn(path), 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a message longer than one stored value is refused to its sender, not failing the store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await KvStore.open(join(dir, "history.kv"), 100);
    const broker = await LocalBroker.open({ store });
    assertEquals(broker.log.publish(note(1, "字".repeat(33_000))), "too_large");
    assertEquals(broker.log.publish(note(1, "字".repeat(10_000))), "queued");
    await broker.close();
    const again = await KvStore.open(join(dir, "history.kv"), 100);
    const { rooms } = await again.load();
    again.close();
    assertEquals(rooms[0].messages.map(({ note }) => note.text.length), [10_000]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("messages to many rooms with long keys at once are all stored", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "history.kv");
  try {
    const store = await KvStore.open(path, 100);
    const broker = await LocalBroker.open({ store });
    const names = Array.from({ length: 100 }, (_, i) => `${LONG.slice(0, 30)}${i}`);
    for (const name of names) assertEquals(broker.log.publish(note(1, "hi", name)), "queued");
    await broker.close();
    const again = await KvStore.open(path, 100);
    const { rooms } = await again.load();
    again.close();
    assertEquals(rooms.length, 100);
    assertEquals(rooms.every(({ messages }) => messages.length === 1), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a backlog is written a bounded piece at a time, never stalling the event loop", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "history.kv");
  try {
    const broker = await LocalBroker.open({ store: await KvStore.open(path, 100) });
    // Text far from ASCII: three bytes a character once encoded, 6 KB a message, 18 MB in all.
    for (let seq = 1; seq <= 3000; seq++) {
      assertEquals(broker.log.publish(note(seq, "字".repeat(2000), "lobby")), "queued");
    }
    const stalls = watchStalls();
    await broker.close();
    stalls.stop();
    const worst = stalls.longest();
    assert(worst < 150, `the event loop stood still for ${Math.round(worst)} ms`);

    const again = await KvStore.open(path, 100);
    const { rooms } = await again.load();
    again.close();
    assertEquals(rooms.map(({ room, messages }) => [room.lastSeq, messages.length]), [[3000, 100]]);
    assertEquals(
      rooms[0].messages.map(({ seq }) => seq),
      Array.from({ length: 100 }, (_, i) => 2901 + i),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
