/**
 * Room history in a Deno KV file, so a restarted server still shows the
 * recent conversation. Keys are `["rooms", <room key>, <seq>]`; each room
 * keeps its newest `history_size` messages.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { dirname } from "@std/path";
import type { MessageNote } from "../broker/types.ts";
import { nameKey } from "../names.ts";

const log = getLogger(["chat", "history"]);

/** A stored message with its number in its room. */
export interface StoredNote {
  readonly note: MessageNote;
  readonly seq: number;
}

/** Messages of every room, kept on disk. */
export class KvHistoryStore {
  readonly #kv: Deno.Kv;
  readonly #historySize: number;

  private constructor(kv: Deno.Kv, historySize: number) {
    this.#kv = kv;
    this.#historySize = historySize;
  }

  /** Opens (or creates) the store at `path`. */
  static async open(path: string, historySize: number): Promise<KvHistoryStore> {
    await Deno.mkdir(dirname(path), { recursive: true });
    return new KvHistoryStore(await Deno.openKv(path), historySize);
  }

  /** Every kept message, room by room, oldest first. */
  async *load(): AsyncGenerator<StoredNote> {
    for await (const entry of this.#kv.list<MessageNote>({ prefix: ["rooms"] })) {
      yield { note: entry.value, seq: entry.key[2] as number };
    }
  }

  /** Keeps a message and forgets the one that falls out of the room's history. */
  append(note: MessageNote, seq: number): void {
    const room = nameKey(note.room);
    const write = this.#kv.atomic().set(["rooms", room, seq], note);
    if (seq > this.#historySize) write.delete(["rooms", room, seq - this.#historySize]);
    write.commit().catch((error) => {
      log.error("Cannot store message {seq} of {room}: {error}", { seq, room, error });
    });
  }

  /** Forgets a room's history. */
  async removeRoom(room: string): Promise<void> {
    for await (const entry of this.#kv.list({ prefix: ["rooms", nameKey(room)] })) {
      await this.#kv.delete(entry.key);
    }
  }

  close(): void {
    this.#kv.close();
  }
}
