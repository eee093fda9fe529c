/**
 * The broker of a server running alone: everything is delivered at once, in
 * this process. With a history store, messages are also kept on disk.
 *
 * @module
 */

import type { KvHistoryStore } from "../history/kv_store.ts";
import { nameKey } from "../names.ts";
import type { Broker, BrokerHandler, PrivateNote, RemoteUser, RoomNote } from "./types.ts";

/**
 * Delivers every note straight back to the chatroom. With a store, it also
 * numbers messages itself, keeps them, and replays them on start.
 */
export class LocalBroker implements Broker {
  readonly instance = "";
  readonly #store: KvHistoryStore | undefined;
  /** The newest seq per room key, when numbering for the store. */
  readonly #lastSeq = new Map<string, number>();
  #handler: BrokerHandler | undefined;

  constructor(store?: KvHistoryStore) {
    this.#store = store;
  }

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  /** Replays the stored history, if any, into the chatroom. */
  async start(): Promise<void> {
    if (this.#store === undefined) return;
    for await (const { note, seq } of this.#store.load()) {
      this.#lastSeq.set(nameKey(note.room), seq);
      this.#handler?.deliverRoomNote(note, seq);
    }
  }

  publishRoomNote(note: RoomNote): boolean {
    if (this.#store === undefined || note.kind !== "message") {
      this.#handler?.deliverRoomNote(note);
      return true;
    }
    const room = nameKey(note.room);
    const seq = (this.#lastSeq.get(room) ?? 0) + 1;
    this.#lastSeq.set(room, seq);
    this.#store.append(note, seq);
    this.#handler?.deliverRoomNote(note, seq);
    return true;
  }

  publishPrivate(note: PrivateNote, _to: RemoteUser): void {
    this.#handler?.deliverPrivate(note);
  }

  findRemote(_key: string): RemoteUser | undefined {
    return undefined;
  }

  remoteUsers(): Iterable<RemoteUser> {
    return [];
  }

  remoteMembers(_room: string): Iterable<RemoteUser> {
    return [];
  }

  announce(_name: string, _room: string, _userId: number): void {}

  withdraw(_name: string): void {}

  roomRemoved(room: string): void {
    this.#lastSeq.delete(nameKey(room));
    this.#store?.removeRoom(room);
  }

  close(): Promise<void> {
    this.#store?.close();
    return Promise.resolve();
  }
}
