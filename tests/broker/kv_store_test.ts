/** The history store's writes stay within one Deno KV atomic operation, whatever it holds. */

import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { KvStore, type StoredRoom } from "../../src/broker/kv_store.ts";
import { LocalBroker } from "../../src/broker/local.ts";
import type { MessageNote } from "../../src/broker/types.ts";

const room = (lastSeq: number): StoredRoom => ({
  name: "lobby",
  life: "0000life",
  epoch: "0000life",
  lastSeq,
});

const note = (seq: number, text = `message ${seq}`): MessageNote => ({
  kind: "message",
  room: "lobby",
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

Deno.test("a lowered history_size: old pages go over later writes, and new ones are stored", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "history.kv");
  try {
    const roomy = await KvStore.open(path, 2000);
    await roomy.load();
    for (let seq = 1; seq <= 1500; seq++) {
      await roomy.commit({
        messages: [{ room: room(seq), message: { note: note(seq), seq } }],
        rooms: [room(seq)],
        settles: true,
      });
    }
    roomy.close();
    assertEquals(await pagesIn(path), 1500);

    const small = await KvStore.open(path, 10);
    await small.load();
    for (let seq = 1501; seq <= 1503; seq++) {
      const batch = {
        messages: [{ room: room(seq), message: { note: note(seq), seq } }],
        rooms: [room(seq)],
        settles: true,
      };
      assertEquals(small.fits(batch), true);
      await small.commit(batch);
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
