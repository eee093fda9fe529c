/**
 * Which instances are alive: each sends a heartbeat, keeping its names in
 * the bucket alive; an instance not heard of for `name_ttl` is gone, and
 * every survivor says goodbye for its users (each goodbye delivered once)
 * and releases their names.
 *
 * So a name is held on a lease: an instance that could not write it again
 * for nearly `name_ttl` (its link to NATS cut, or NATS away) lets it go, and
 * says goodbye for its user as the others do, before the others may give it
 * away. No name is held on two instances at once.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/nats-core";
import type { RoomNote } from "../types.ts";
import { departureId } from "../departures.ts";
import type { ClusterNames } from "./names.ts";
import type { NameEntry } from "./wire.ts";
import { DecodeError } from "../decode.ts";
import { readHeartbeat } from "./wire.ts";
import { nameLeaseMargin } from "../../config/mod.ts";

const HEARTBEAT_SUBJECT = "chat.heartbeat";
/** Announcements looked up at once, at most. */
const MAX_LOOKUPS = 8;
/** Leases are looked at this often, at most (and twice per margin). */
const LEASE_CHECK_MS = 250;

const log = getLogger(["chat", "cluster"]);

/** What {@linkcode Liveness} works with. */
export interface LivenessOptions {
  readonly nc: NatsConnection;
  readonly instance: string;
  readonly names: ClusterNames;
  /** Seconds a name outlives its instance's last heartbeat. */
  readonly nameTtl: number;
  /** Seconds between heartbeats. */
  readonly heartbeat: number;
  /** Whether NATS is there to send to. */
  readonly connected: () => boolean;
  /** Publishes a goodbye for a user of a gone instance, or let go here (past `max_outbox`)... */
  readonly publish: (note: RoomNote) => void;
  /** ...and resolves once what was published is stored. */
  readonly drained: () => Promise<void>;
  /** A heartbeat could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
  /** The lease of a local user's name ran out: their session ends (their goodbye is said). */
  readonly lapsed: (name: string) => void;
}

/** Heartbeats, sent and heard. */
export class Liveness {
  readonly #options: LivenessOptions;
  /** When each other instance last showed signs of life (every time here is monotonic). */
  readonly #lastSeen = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #leases: ReturnType<typeof setInterval> | undefined;
  /** Announcements being looked up in the bucket now. */
  #lookups = 0;
  /** When this instance last heard its own heartbeat: proof that its link to NATS carries. */
  #echoed = performance.now();

  constructor(options: LivenessOptions) {
    this.#options = options;
  }

  /** Starts beating and listening. */
  start(): void {
    const { nc, instance, heartbeat, malformed } = this.#options;
    (async () => {
      for await (const message of nc.subscribe(HEARTBEAT_SUBJECT)) {
        try {
          const other = readHeartbeat(message.string());
          if (other === instance) this.#echoed = performance.now();
          else this.#heard(other);
        } catch (error) {
          malformed(HEARTBEAT_SUBJECT, error);
        }
      }
    })().catch((error) =>
      log.error("Stopped following {what}: {error}", { what: "heartbeats", error })
    );
    this.#timer = setInterval(() => this.beat(), heartbeat * 1000);
    this.#leases = setInterval(
      () => this.#checkLeases(),
      Math.min(LEASE_CHECK_MS, this.#margin / 2),
    );
    this.beat();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#leases);
  }

  /** How long before `name_ttl` runs out a name is let go, in milliseconds. */
  get #margin(): number {
    return nameLeaseMargin(this.#options.nameTtl) * 1000;
  }

  /**
   * Lets go of the names not written again for `name_ttl` less the margin,
   * and says goodbye for their users. The others could take this instance
   * for gone at `name_ttl` after they last heard of it, which is after the
   * last write NATS took: so the name is let go here first.
   */
  #checkLeases(): void {
    const lease = this.#options.nameTtl * 1000 - this.#margin;
    const lapsed = this.#options.names.lapse(performance.now() - lease);
    if (lapsed.length === 0) return;
    const now = Date.now();
    log.warning("Lost the cluster for too long to keep {count} names; their users are let go", {
      count: lapsed.length,
    });
    for (const user of lapsed) {
      this.#goodbye(this.#options.instance, user, now);
      this.#options.lapsed(user.name);
    }
  }

  /** Says goodbye for `user` of `instance`, under the same id on every instance. */
  #goodbye(instance: string, user: Pick<NameEntry, "room" | "userId" | "name">, now: number): void {
    this.#options.publish({
      kind: "presence",
      room: user.room,
      id: departureId(instance, user.userId),
      sentAt: now,
      author: { instance, userId: user.userId, name: user.name },
      action: "leave",
      notice: "disconnected",
    });
  }

  /**
   * A heartbeat from `other`: a sign of life when it announced itself in the
   * names bucket; from anyone else (a stray or forged one, which could make
   * itself look alive, or keep a gone instance looking alive) it is refused.
   */
  #heard(other: string): void {
    const refuse = () =>
      this.#options.malformed(
        HEARTBEAT_SUBJECT,
        new DecodeError(`a heartbeat from ${other}, which is not announced (or no longer)`),
      );
    // Looking an instance up costs a request: a flood of unknown ids is refused unread.
    if (!this.#options.names.instances.fresh(other) && this.#lookups >= MAX_LOOKUPS) {
      return refuse();
    }
    this.#lookups++;
    this.#options.names.instances.announced(other).then((announced) => {
      this.#lookups--;
      if (announced) this.seen(other);
      else refuse();
    });
  }

  /** Another instance showed signs of life. */
  seen(instance: string): void {
    this.#lastSeen.set(instance, performance.now());
  }

  /** Nobody could be heard while NATS was away: everyone starts afresh. */
  forgive(): void {
    this.#echoed = performance.now();
    for (const instance of this.#lastSeen.keys()) this.seen(instance);
    this.#options.names.forgive();
  }

  /** Keeps our names alive, tells the others we are, and lets go of instances that are not. */
  beat(): void {
    // First, so that no name whose lease ran out (a stalled process, say) is written again.
    this.#checkLeases();
    if (!this.#options.connected()) return;
    const { nc, instance, names } = this.#options;
    // The announcement first, so that no instance hears a heartbeat it cannot believe yet.
    names.instances.register().then(
      () => nc.publish(HEARTBEAT_SUBJECT, JSON.stringify({ instance })),
      (error) => log.warning("Cannot announce this instance: {error}", { error }),
    );
    names.keepAlive();
    // Gone instances' users are said goodbye to before their lapsed entries would be forgotten.
    this.#releaseDead();
    names.sweep();
  }

  /**
   * Says goodbye for the users of every instance not heard of for
   * `name_ttl`, then releases their names. Every survivor does so for the
   * users it knows, under the same note ids (the gone instance's and user's),
   * and each room delivers a goodbye once: so no goodbye depends on one
   * survivor, and a name retaken here is said goodbye to before its new
   * holder arrives (both are published here, in that order).
   */
  #releaseDead(): void {
    const now = performance.now();
    // Not hearing ourselves, our own link is in doubt (cut, with the socket still open): then
    // silence says nothing of the others, and declaring them gone would tell lies on heal.
    if (now - this.#echoed > 2 * this.#options.heartbeat * 1000 + 1000) return;
    const deadline = this.#options.nameTtl * 1000;
    const dead = [...this.#lastSeen].filter(([, seen]) => now - seen > deadline).map(([id]) => id);
    for (const instance of dead) {
      this.#lastSeen.delete(instance);
      log.warning("Instance {instance} is gone; releasing its users", { instance });
      const users = this.#options.names.dropInstance(instance);
      for (const user of users) this.#goodbye(instance, user, Date.now());
      // Once the goodbyes are stored, so nobody can take a name before its holder left.
      this.#options.drained().then(() => this.#options.names.release(users));
    }
  }
}
