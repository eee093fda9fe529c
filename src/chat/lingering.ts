/**
 * Sessions whose connection dropped, kept for `session_linger` so that their
 * client can resume them: each keeps its name, room, token and its socket's
 * place in the connection limits, and is ended when its time is up, or
 * earlier when a new session needs its place.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ChatConfig } from "../config/mod.ts";
import type { Metrics } from "../metrics.ts";
import { addressKey } from "../net/ip.ts";
import type { Place, Sink } from "../vocabulary/events.ts";
import { LingeringSink, type User } from "./user.ts";
import type { UserDirectory } from "./users.ts";

const log = getLogger(["chat", "session"]);

/** What {@linkcode Lingering} works with, shared with the sessions. */
export interface LingeringOptions {
  readonly config: ChatConfig;
  readonly now: () => number;
  readonly metrics: Metrics;
  readonly users: UserDirectory;
  /** Ends a session: the room is told, the name released. */
  readonly end: (user: User) => void;
}

/** The dropped sessions of one server, oldest first. */
export class Lingering {
  readonly #options: LingeringOptions;
  readonly #users = new Set<User>();

  constructor(options: LingeringOptions) {
    this.#options = options;
  }

  /**
   * The connection behind `sink` closed. A session that can resume lingers,
   * keeping the socket's `place`, and nobody sees it leave unless it does
   * not come back; any other session ends now.
   */
  detach(user: User, sink: Sink, place?: Place): void {
    const { config, users } = this.#options;
    // One of an account's devices closed: the others carry the session on.
    if (!users.has(user) || user.dropDevice(sink) || user.sink !== sink) return;
    const linger = config.sessionLinger;
    if (!user.resumable || linger === 0 || !user.started) return this.#options.end(user);
    const until = this.#options.now() + linger * 1000;
    user.attach(new LingeringSink(until, config.sessionBuffer));
    if (place !== undefined) user.keep(place.linger());
    this.#users.add(user);
    log.info("User {id} ({name}) dropped; keeping the session {seconds} s", {
      id: user.id,
      name: user.name,
      seconds: linger,
    });
  }

  /**
   * A new session from a crowded place (its address, or the server, over
   * the limit counting lingering sessions) ends the oldest lingering one
   * there, so dropped sessions never hold more than the limit.
   */
  makeRoom(place: Place | undefined, address: string | undefined): void {
    const crowded = place?.crowded();
    if (crowded === undefined) return;
    const key = address === undefined ? undefined : addressKey(address);
    for (const user of this.#users) {
      if (crowded === "address" && user.addressKey !== key) continue;
      log.info("User {id} ({name}) lingered too long for a new session from {where}", {
        id: user.id,
        name: user.name,
        where: crowded === "address" ? key : "the whole server",
      });
      this.#options.metrics.sessionsExpired.inc();
      return this.#options.end(user);
    }
  }

  /** Ends the lingering sessions whose time is up. */
  expire(): void {
    const now = this.#options.now();
    for (const user of this.#users) {
      const lingering = user.lingering;
      if (lingering !== undefined && lingering.until > now) continue;
      this.#options.metrics.sessionsExpired.inc();
      this.#options.end(user);
    }
  }

  /** A session resumed, moved elsewhere or ended: it lingers no more. */
  forget(user: User): void {
    this.#users.delete(user);
  }
}
