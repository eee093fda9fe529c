/**
 * The users of other instances, as the names bucket says: by bucket key, by
 * every comparison key (a name is taken when any matches) and by room (so a
 * room's members cost O(room)). Each entry is written again at every
 * heartbeat of its instance; one not written for longer than the bucket
 * keeps it has expired there, which the bucket does not announce, so it is
 * swept here.
 *
 * @module
 */

import { comparisonKeys, nameKey } from "../../text/names.ts";
import type { NameEntry } from "./wire.ts";

/** A name held by another instance, with the revision of its entry. */
export interface RemoteEntry extends NameEntry {
  readonly revision: number;
}

/** Who holds names elsewhere. */
export class RemoteNames {
  readonly #byKey = new Map<string, RemoteEntry>();
  /** Entries by each comparison key of their name. */
  readonly #byAlike = new Map<string, RemoteEntry>();
  readonly #byRoom = new Map<string, Map<string, RemoteEntry>>();
  /** When each entry was last written, by bucket key. */
  readonly #writtenAt = new Map<string, number>();

  /** The entry under bucket key `key`. */
  get(key: string): RemoteEntry | undefined {
    return this.#byKey.get(key);
  }

  /** The entry whose name is a look-alike of `name`. */
  lookAlike(name: string): RemoteEntry | undefined {
    for (const key of comparisonKeys(name)) {
      const user = this.#byAlike.get(key);
      if (user !== undefined) return user;
    }
    return undefined;
  }

  all(): Iterable<RemoteEntry> {
    return this.#byKey.values();
  }

  inRoom(room: string): Iterable<RemoteEntry> {
    return this.#byRoom.get(nameKey(room))?.values() ?? [];
  }

  /** Records the entry under `key`, written `now`. */
  set(key: string, user: RemoteEntry, now: number): void {
    this.delete(key);
    this.#byKey.set(key, user);
    this.#writtenAt.set(key, now);
    for (const alike of comparisonKeys(user.name)) this.#byAlike.set(alike, user);
    const room = nameKey(user.room);
    let members = this.#byRoom.get(room);
    if (members === undefined) this.#byRoom.set(room, members = new Map());
    members.set(key, user);
  }

  delete(key: string): void {
    const user = this.#byKey.get(key);
    if (user === undefined) return;
    this.#byKey.delete(key);
    this.#writtenAt.delete(key);
    for (const alike of comparisonKeys(user.name)) {
      if (this.#byAlike.get(alike) === user) this.#byAlike.delete(alike);
    }
    const room = nameKey(user.room);
    const members = this.#byRoom.get(room);
    members?.delete(key);
    if (members?.size === 0) this.#byRoom.delete(room);
  }

  /** Forgets the users of `instance`, and returns them. */
  dropInstance(instance: string): RemoteEntry[] {
    const dropped: RemoteEntry[] = [];
    for (const [key, user] of this.#byKey) {
      if (user.instance !== instance) continue;
      this.delete(key);
      dropped.push(user);
    }
    return dropped;
  }

  /** Counts every entry as written `now`. */
  touchAll(now: number): void {
    for (const key of this.#writtenAt.keys()) this.#writtenAt.set(key, now);
  }

  /** Forgets the entries not written since `before`: the bucket has dropped them. */
  sweep(before: number): void {
    for (const [key, at] of this.#writtenAt) if (at < before) this.delete(key);
  }
}
