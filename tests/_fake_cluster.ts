/**
 * Instances joined through a cluster that lives in memory: each gets a
 * {@linkcode Broker} whose room logs, records, names and mail are shared, so
 * the chat's cluster behaviour (handovers, remote ranks, remote bans) is
 * unit-tested without NATS. Deliveries are synchronous; claims, handovers
 * and kicks settle on the next microtask, as awaited ones do.
 */

import type {
  Broker,
  BrokerHandler,
  Cluster,
  LocalHolder,
  ModerationRecord,
  Records,
  RemoteUser,
  RoomLog,
  TypingNote,
} from "../src/broker/types.ts";
import { looksLike, nameKey } from "../src/text/names.ts";

/** A name held in the cluster. */
interface Entry extends RemoteUser {
  readonly userId: number;
}

/** The shared state of the instances. */
export class FakeCluster {
  readonly #brokers = new Map<string, FakeBroker>();
  readonly names = new Map<string, Entry>();
  readonly records = new Map<string, ModerationRecord>();
  readonly #logs = new Map<string, { epoch: string; seq: number }>();

  /** A broker for one more instance. */
  join(): Broker {
    const broker = new FakeBroker(this, `i${this.#brokers.size + 1}`);
    this.#brokers.set(broker.instance, broker);
    return broker;
  }

  /** Whether `instance` is one of the cluster's (one that is not answers nothing, as if dead). */
  has(instance: string): boolean {
    return this.#brokers.has(instance);
  }

  /** The handler of an instance. */
  handlerOf(instance: string): BrokerHandler {
    const handler = this.#brokers.get(instance)?.handler;
    if (handler === undefined) throw new TypeError(`No instance ${instance}`);
    return handler;
  }

  /** Every instance's handler, in the order they joined. */
  handlers(): BrokerHandler[] {
    return [...this.#brokers.values()].map((broker) => broker.handler!);
  }

  logOf(room: string): { epoch: string; seq: number } {
    const key = nameKey(room);
    let log = this.#logs.get(key);
    if (log === undefined) this.#logs.set(key, log = { epoch: "e0000001", seq: 0 });
    return log;
  }
}

class FakeBroker implements Broker {
  readonly instance: string;
  readonly healthy = true;
  handler: BrokerHandler | undefined;
  readonly log: RoomLog;
  readonly records: Records;
  readonly cluster: Cluster;
  readonly #shared: FakeCluster;

  constructor(shared: FakeCluster, instance: string) {
    this.instance = instance;
    this.#shared = shared;
    this.log = {
      epochOf: (room) => shared.logOf(room).epoch,
      publish: (note) => {
        const log = shared.logOf(note.room);
        const position = note.kind === "message" ? { epoch: log.epoch, seq: ++log.seq } : undefined;
        for (const handler of shared.handlers()) handler.deliverRoomNote(note, position);
        return "queued";
      },
      follow: () => {},
      unfollow: () => {},
      removed: () => {},
    };
    this.records = {
      save: (key, record) => {
        if (record === undefined) shared.records.delete(key);
        else shared.records.set(key, record);
        for (const handler of shared.handlers()) handler.recordChanged(key, record);
        return true;
      },
      removeExpired: (key, at) => {
        if (shared.records.get(key)?.at === at) this.records.save(key, undefined);
      },
      all: () => shared.records,
    };
    const others = () => [...shared.names.values()].filter((entry) => entry.instance !== instance);
    const entry = (name: string, holder: LocalHolder): Entry => ({
      name,
      room: holder.room,
      instance,
      userId: holder.userId,
      rank: holder.rank,
    });
    this.cluster = {
      names: {
        find: (name) => others().find((other) => looksLike(other.name, name)),
        users: others,
        members: (room) => others().filter((other) => nameKey(other.room) === nameKey(room)),
        claim: (name, holder) => {
          // As the names bucket with its look-alike guards: any key held elsewhere refuses.
          const held = [...shared.names.values()].some((other) =>
            other.instance !== instance && looksLike(other.name, name)
          );
          if (held) return Promise.resolve(false);
          shared.names.set(nameKey(name), entry(name, holder));
          return Promise.resolve(true);
        },
        announce: (name, holder) => shared.names.set(nameKey(name), entry(name, holder)),
        withdraw: (name) => {
          if (shared.names.get(nameKey(name))?.instance === instance) {
            shared.names.delete(nameKey(name));
          }
        },
        takeOver: (name, token, holder, verified) => {
          const held = shared.names.get(nameKey(name));
          if (held === undefined || held.instance === instance || !shared.has(held.instance)) {
            return Promise.resolve(undefined);
          }
          const handover = shared.handlerOf(held.instance).handOver(name, token, verified);
          if (handover !== undefined) {
            shared.names.set(nameKey(name), entry(name, { ...holder, room: handover.room }));
          }
          return Promise.resolve(handover);
        },
      },
      mail: {
        sendPrivate: (note, to) => {
          shared.handlerOf(to.instance).deliverPrivate(note);
          return "sent";
        },
        kick: (note, to) => Promise.resolve(shared.handlerOf(to.instance).deliverKick(note)),
        rankOf: (to) => Promise.resolve(shared.handlerOf(to.instance).rankOf(to.name)),
      },
      // Devices on other instances are relayed over sockets: the e2e cluster tests cover them.
      relay: { open: () => Promise.resolve("not_live"), serve: () => {} },
    };
  }

  attach(handler: BrokerHandler): void {
    this.handler = handler;
  }

  typing(note: TypingNote): void {
    for (const handler of this.#shared.handlers()) handler.deliverTyping(note);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
