/**
 * Everyone connected to one server, found by name (compared as names are)
 * or by id.
 *
 * @module
 */

import { comparisonKeys, MAX_NAME_UNITS } from "../text/names.ts";
import { User, type UserOptions } from "./user.ts";

/** The users of one server, in arrival order. */
export class UserDirectory {
  readonly #users = new Set<User>();
  /** Users by each of their name's {@linkcode comparisonKeys}: a name is taken when any is. */
  readonly #byKey = new Map<string, User>();
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
    return this.findOther(name, undefined);
  }

  /**
   * Someone other than `self` who holds `name` or a look-alike, under any
   * key: `self`'s own match under one key (a new spelling of their own name)
   * must not hide another user's under another.
   */
  findOther(name: string, self: User | undefined): User | undefined {
    if (name.length > MAX_NAME_UNITS) return undefined;
    for (const key of comparisonKeys(name)) {
      const user = this.#byKey.get(key);
      if (user !== undefined && user !== self) return user;
    }
    return undefined;
  }

  byId(id: number): User | undefined {
    return this.#byId.get(id);
  }

  /** A new user called `name`, which must be free. */
  add(name: string, options: UserOptions): User {
    const user = new User(this.#nextId++, name, options);
    this.#users.add(user);
    this.#index(user, name);
    this.#byId.set(user.id, user);
    return user;
  }

  /** Gives `user` the free name `name`. */
  rename(user: User, name: string): void {
    this.#unindex(user);
    this.#index(user, name);
    user.rename(name);
  }

  /** Removes a user whose session ended, giving back the place it kept while lingering. */
  remove(user: User): void {
    if (this.#users.has(user)) user.leave();
    this.#users.delete(user);
    this.#unindex(user);
    this.#byId.delete(user.id);
  }

  #index(user: User, name: string): void {
    for (const key of comparisonKeys(name)) this.#byKey.set(key, user);
  }

  /** Forgets `user`'s name under each of its keys, where it is theirs. */
  #unindex(user: User): void {
    for (const key of comparisonKeys(user.name)) {
      if (this.#byKey.get(key) === user) this.#byKey.delete(key);
    }
  }
}
