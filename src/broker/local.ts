/**
 * The broker of a server running alone: everything is delivered at once, in
 * this process. With a history store, messages are also kept on disk.
 *
 * @module
 */

import type { Broker, BrokerHandler, PrivateNote, RemoteUser, RoomNote } from "./types.ts";

/** Delivers every note straight back to the chatroom. */
export class LocalBroker implements Broker {
  readonly instance = "";
  #handler: BrokerHandler | undefined;

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  publishRoomNote(note: RoomNote): void {
    this.#handler?.deliverRoomNote(note);
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

  announce(_name: string, _room: string, _userId: number): void {}

  withdraw(_name: string): void {}

  roomRemoved(_room: string): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
