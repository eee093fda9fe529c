/**
 * Everyone connected to one server, found by name (compared as names are)
 * or by id.
 *
 * @module
 */

import { lookAlikeKey, MAX_NAME_UNITS, nameKey } from "../text/names.ts";
import { User, type UserOptions } from "./user.ts";

/** The users of one server, in arrival order. */
export class UserDirectory {
  readonly #users = new Set<User>();
  /** Users by {@linkcode nameKey}... */
  readonly #byName = new Map<string, User>();
  /** ...and by {@linkcode lookAlikeKey}: a name is taken when either is. */
  readonly #byLookAlike = new Map<string, User>();
  /** Users by id, to recognize their own events coming back from the broker. */
  readonly #byId = new Map<number, User>();
  #nextId = 1;

  get size(): number {
    return this.#users.size;
  }

  /** Everyone, in arrival order. */
  all(): IterableIterator<User> {
    return this.#users.values();
  }

  has(user: User): boolean {
    return this.#users.has(user);
  }

  /** The user holding `name`, or a look-alike of it (compared as names are). */
  find(name: string): User | undefined {
    if (name.length > MAX_NAME_UNITS) return undefined;
    return this.#byName.get(nameKey(name)) ?? this.#byLookAlike.get(lookAlikeKey(name));
  }

  byId(id: number): User | undefined {
    return this.#byId.get(id);
  }

  /** A new user called `name`, which must be free. */
  add(name: string, options: UserOptions): User {
    const user = new User(this.#nextId++, name, options);
    this.#users.add(user);
    this.#byName.set(nameKey(name), user);
    this.#byLookAlike.set(lookAlikeKey(name), user);
    this.#byId.set(user.id, user);
    return user;
  }

  /** Gives `user` the free name `name`. */
  rename(user: User, name: string): void {
    this.#unindex(user);
    this.#byName.set(nameKey(name), user);
    this.#byLookAlike.set(lookAlikeKey(name), user);
    user.rename(name);
  }

  /** Removes a user whose session ended, giving back the place it kept while lingering. */
  remove(user: User): void {
    if (this.#users.has(user)) user.leave();
    this.#users.delete(user);
    this.#unindex(user);
    this.#byId.delete(user.id);
  }

  /** Forgets `user`'s name in both indexes, where it is theirs. */
  #unindex(user: User): void {
    const key = nameKey(user.name);
    if (this.#byName.get(key) === user) this.#byName.delete(key);
    const alike = lookAlikeKey(user.name);
    if (this.#byLookAlike.get(alike) === user) this.#byLookAlike.delete(alike);
  }
}
