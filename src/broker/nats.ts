/**
 * The broker of a cluster: instances joined through NATS (its WebSocket
 * listener, through `wsconnect`).
 *
 * - Room events go into one JetStream stream (file storage, `history_size`
 *   kept per room). Every instance reads the whole stream in order with an
 *   ordered consumer, so all of them see the same events in the same order,
 *   once each, numbered by the stream; the stream is also every room's history.
 * - Names live in a JetStream KV bucket: taken with create-if-absent, kept
 *   alive by each instance's heartbeat and expiring after `name_ttl`. Every
 *   instance watches the bucket, which tells it who is where.
 * - Private messages go straight to the target's instance over core NATS.
 * - When an instance stops sending heartbeats, the lowest-id survivor says
 *   goodbye for its users and releases their names.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type NatsConnection, type Subscription, wsconnect } from "@nats-io/nats-core";
import { DiscardPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { nameKey } from "../names.ts";
import {
  type Broker,
  type BrokerHandler,
  type PrivateNote,
  randomId,
  type RemoteUser,
  type RoomNote,
} from "./types.ts";

const STREAM = "CHAT_ROOMS";
const ROOM_SUBJECTS = "chat.room.>";
const BUCKET = "chat_names";
/** Each room's epoch, so every instance numbers a room's log in the same one. */
const ROOMS_BUCKET = "chat_rooms";
const HEARTBEAT_SUBJECT = "chat.heartbeat";
const RETRY_MS = 500;
/** Room events kept while NATS is away; beyond this, users are told to try later. */
const MAX_OUTBOX = 10_000;

const log = getLogger(["chat", "cluster"]);

/** Settings of {@linkcode NatsBroker.connect}, from `server.yaml`'s `cluster.nats`. */
export interface NatsBrokerOptions {
  /** WebSocket URLs of NATS servers, such as `ws://127.0.0.1:8222`. */
  readonly servers: readonly string[];
  /** Seconds a name outlives its instance's last heartbeat. */
  readonly nameTtl: number;
  /** Seconds between heartbeats. */
  readonly heartbeat: number;
  /** Messages kept per room. */
  readonly historySize: number;
}

/** What the names bucket holds for each name. */
interface NameEntry {
  readonly name: string;
  readonly room: string;
  readonly instance: string;
  readonly userId: number;
}

/** KV keys allow only a few characters, so names are stored base64url-encoded. */
function bucketKey(key: string): string {
  const bytes = new TextEncoder().encode(key);
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
}

function decodeBucketKey(key: string): string {
  const base64 = key.replaceAll("-", "+").replaceAll("_", "/");
  const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** Subject tokens may not hold ".", "*", ">" or spaces; room keys never do. */
function roomSubject(room: string, kind: RoomNote["kind"]): string {
  return `chat.room.${nameKey(room)}.${kind}`;
}

/** Instances joined through NATS. */
export class NatsBroker implements Broker {
  readonly instance: string = randomId();
  readonly #options: NatsBrokerOptions;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #kv: KV;
  readonly #roomsKv: KV;
  /** Each room's epoch, by room key. */
  readonly #epochs = new Map<string, string>();
  #handler: BrokerHandler | undefined;
  /** Users of other instances, by bucket key. */
  readonly #remote = new Map<string, NameEntry>();
  /** The same users by room key, then bucket key, so a room's members cost O(room). */
  readonly #remoteByRoom = new Map<string, Map<string, NameEntry>>();
  /** Names this instance holds, by name key. */
  readonly #local = new Map<string, NameEntry>();
  /** When each other instance last showed signs of life. */
  readonly #lastSeen = new Map<string, number>();
  /** Room events not yet accepted by the stream, in order; kept while NATS is away. */
  readonly #outbox: RoomNote[] = [];
  readonly #subscriptions: Subscription[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #connected = true;
  #flushing = false;

  private constructor(
    options: NatsBrokerOptions,
    nc: NatsConnection,
    jsm: JetStreamManager,
    buckets: { names: KV; rooms: KV },
  ) {
    this.#options = options;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#kv = buckets.names;
    this.#roomsKv = buckets.rooms;
  }

  /** Connects to NATS and makes sure the stream and the names bucket exist. */
  static async connect(options: NatsBrokerOptions): Promise<NatsBroker> {
    const nc = await wsconnect({
      servers: [...options.servers],
      name: "chat-server",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 5000,
    });
    const jsm = await jetstreamManager(nc);
    const stream = {
      name: STREAM,
      subjects: [ROOM_SUBJECTS],
      storage: StorageType.File,
      max_msgs_per_subject: Math.max(1, options.historySize),
      discard: DiscardPolicy.Old,
    };
    try {
      await jsm.streams.info(STREAM);
      await jsm.streams.update(STREAM, stream);
    } catch {
      await jsm.streams.add(stream);
    }
    const kvm = new Kvm(nc);
    const names = await kvm.create(BUCKET, {
      history: 1,
      ttl: options.nameTtl * 1000,
      storage: StorageType.File,
    });
    const rooms = await kvm.create(ROOMS_BUCKET, { history: 1, storage: StorageType.File });
    return new NatsBroker(options, nc, jsm, { names, rooms });
  }

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  /**
   * The room's epoch: the one the cluster agreed on, or a new one proposed
   * now (the first instance to create it in the rooms bucket wins, and the
   * others learn it by watching the bucket).
   */
  epochOf(room: string): string {
    const key = nameKey(room);
    const known = this.#epochs.get(key);
    if (known !== undefined) return known;
    const epoch = randomId();
    this.#epochs.set(key, epoch);
    this.#roomsKv.create(bucketKey(key), epoch).catch(async () => {
      const current = await this.#roomsKv.get(bucketKey(key)).catch(() => null);
      if (current?.value.length) this.#epochs.set(key, current.string());
    });
    return epoch;
  }

  /**
   * Starts delivering: replays the stream (every room's history) and resolves
   * once caught up, so the first client already sees the whole backlog.
   */
  async start(): Promise<void> {
    const handler = this.#handler;
    if (handler === undefined) throw new TypeError("Cannot start a broker with no handler");
    await this.#watchNames();
    await this.#watchEpochs();
    this.#subscribe(HEARTBEAT_SUBJECT, (data) => {
      const { instance } = JSON.parse(data) as { instance: string };
      if (instance !== this.instance) this.#lastSeen.set(instance, Date.now());
    });
    this.#subscribe(`chat.pm.${this.instance}`, (data) => {
      handler.deliverPrivate(JSON.parse(data) as PrivateNote);
    });
    const { state } = await this.#jsm.streams.info(STREAM);
    const consumer = await this.#js.consumers.get(STREAM, { filter_subjects: ROOM_SUBJECTS });
    const messages = await consumer.consume();
    let caughtUp: () => void = () => {};
    const ready = new Promise<void>((resolve) => caughtUp = resolve);
    if (state.last_seq === 0) caughtUp();
    (async () => {
      for await (const message of messages) {
        try {
          const note = JSON.parse(message.string()) as RoomNote;
          handler.deliverRoomNote(note, { epoch: this.epochOf(note.room), seq: message.seq });
        } catch (error) {
          log.error("Cannot deliver stream message {seq}: {error}", { seq: message.seq, error });
        }
        if (message.seq >= state.last_seq) caughtUp();
      }
    })();
    this.#watchStatus();
    this.#timer = setInterval(() => this.#beat(), this.#options.heartbeat * 1000);
    this.#beat();
    await ready;
    log.info("Joined the cluster as instance {instance}", { instance: this.instance });
  }

  publishRoomNote(note: RoomNote): boolean {
    if (this.#outbox.length >= MAX_OUTBOX) return false;
    this.#outbox.push(note);
    this.#flush();
    return true;
  }

  publishPrivate(note: PrivateNote, to: RemoteUser): void {
    this.#nc.publish(`chat.pm.${to.instance}`, JSON.stringify(note));
  }

  findRemote(key: string): RemoteUser | undefined {
    return this.#remote.get(bucketKey(key));
  }

  remoteUsers(): Iterable<RemoteUser> {
    return this.#remote.values();
  }

  remoteMembers(room: string): Iterable<RemoteUser> {
    return this.#remoteByRoom.get(nameKey(room))?.values() ?? [];
  }

  #setRemote(key: string, user: NameEntry): void {
    this.#deleteRemote(key);
    this.#remote.set(key, user);
    const room = nameKey(user.room);
    let members = this.#remoteByRoom.get(room);
    if (members === undefined) this.#remoteByRoom.set(room, members = new Map());
    members.set(key, user);
  }

  #deleteRemote(key: string): void {
    const user = this.#remote.get(key);
    if (user === undefined) return;
    this.#remote.delete(key);
    const room = nameKey(user.room);
    const members = this.#remoteByRoom.get(room);
    members?.delete(key);
    if (members?.size === 0) this.#remoteByRoom.delete(room);
  }

  announce(name: string, room: string, userId: number): void {
    const key = nameKey(name);
    const entry: NameEntry = { name, room, instance: this.instance, userId };
    const held = this.#local.get(key);
    this.#local.set(key, entry);
    if (held?.userId === userId) {
      this.#kv.put(bucketKey(key), JSON.stringify(entry)).catch(() => {});
      return;
    }
    this.#kv.create(bucketKey(key), JSON.stringify(entry)).catch(async () => {
      // Taken: by a user of ours that just left (the delete is in flight), or elsewhere.
      const current = await this.#kv.get(bucketKey(key)).catch(() => null);
      const holder = current?.value.length ? current.json<NameEntry>() : undefined;
      if (holder === undefined) {
        await this.#kv.put(bucketKey(key), JSON.stringify(entry)).catch(() => {});
      } else if (holder.instance !== this.instance && this.#local.get(key)?.userId === userId) {
        this.#local.delete(key);
        this.#handler?.nameLost(name);
      }
    });
  }

  withdraw(name: string): void {
    const key = nameKey(name);
    if (!this.#local.delete(key)) return;
    this.#kv.delete(bucketKey(key)).catch(() => {});
  }

  roomRemoved(room: string): void {
    const key = nameKey(room);
    this.#epochs.delete(key);
    this.#roomsKv.delete(bucketKey(key)).catch(() => {});
    for (const kind of ["message", "presence"] as const) {
      this.#jsm.streams.purge(STREAM, { filter: roomSubject(room, kind) }).catch(() => {});
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.allSettled(
      [...this.#local.keys()].map((key) => this.#kv.delete(bucketKey(key))),
    );
    this.#local.clear();
    await this.#nc.drain().catch(() => {});
  }

  /** Publishes what waits in the outbox, in order; stops at the first failure and retries. */
  async #flush(): Promise<void> {
    if (this.#flushing || !this.#connected) return;
    this.#flushing = true;
    try {
      while (this.#outbox.length > 0 && this.#connected) {
        const note = this.#outbox[0];
        // The msgID makes a retry of a publish whose ack was lost harmless.
        await this.#js.publish(roomSubject(note.room, note.kind), JSON.stringify(note), {
          msgID: note.id,
        });
        this.#outbox.shift();
      }
    } catch (error) {
      log.warning("Cannot publish to the stream, retrying: {error}", { error });
      setTimeout(() => this.#flush(), RETRY_MS);
    } finally {
      this.#flushing = false;
    }
  }

  async #watchNames(): Promise<void> {
    const watch = await this.#kv.watch();
    (async () => {
      for await (const entry of watch) {
        if (entry.operation !== "PUT") {
          this.#deleteRemote(entry.key);
          continue;
        }
        const user = entry.json<NameEntry>();
        if (user.instance === this.instance) continue;
        this.#setRemote(entry.key, user);
        this.#lastSeen.set(user.instance, Date.now());
      }
    })();
  }

  async #watchEpochs(): Promise<void> {
    const watch = await this.#roomsKv.watch();
    (async () => {
      for await (const entry of watch) {
        if (entry.operation === "PUT") this.#epochs.set(decodeBucketKey(entry.key), entry.string());
      }
    })();
  }

  #subscribe(subject: string, onData: (data: string) => void): void {
    const subscription = this.#nc.subscribe(subject);
    this.#subscriptions.push(subscription);
    (async () => {
      for await (const message of subscription) {
        try {
          onData(message.string());
        } catch (error) {
          log.warning("Ignored a bad message on {subject}: {error}", { subject, error });
        }
      }
    })();
  }

  #watchStatus(): void {
    (async () => {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect" && this.#connected) {
          this.#connected = false;
          this.#handler?.setDegraded(true);
        } else if (status.type === "reconnect" && !this.#connected) {
          this.#connected = true;
          // Nobody could be heard while we were away: give everyone a fresh start.
          for (const instance of this.#lastSeen.keys()) this.#lastSeen.set(instance, Date.now());
          this.#handler?.setDegraded(false);
          this.#beat();
          this.#flush();
        }
      }
    })();
  }

  /** Keeps our names alive, tells the others we are, and lets go of instances that are not. */
  #beat(): void {
    if (!this.#connected) return;
    this.#nc.publish(HEARTBEAT_SUBJECT, JSON.stringify({ instance: this.instance }));
    for (const [key, entry] of this.#local) {
      this.#kv.put(bucketKey(key), JSON.stringify(entry)).catch(() => {});
    }
    this.#releaseDead();
  }

  #releaseDead(): void {
    const now = Date.now();
    const deadline = this.#options.nameTtl * 1000;
    const dead = [...this.#lastSeen].filter(([, seen]) => now - seen > deadline).map(([id]) => id);
    if (dead.length === 0) return;
    const alive = [this.instance, ...this.#lastSeen.keys()].filter((id) => !dead.includes(id));
    // One survivor speaks for the dead, so each goodbye is said once.
    const speaker = alive.sort()[0] === this.instance;
    for (const instance of dead) {
      this.#lastSeen.delete(instance);
      log.warning("Instance {instance} is gone; releasing its users", { instance });
      for (const [key, user] of this.#remote) {
        if (user.instance !== instance) continue;
        this.#deleteRemote(key);
        if (!speaker) continue;
        this.#kv.delete(key).catch(() => {});
        this.publishRoomNote({
          kind: "presence",
          room: user.room,
          id: `${instance}.gone.${user.userId}`,
          sentAt: now,
          author: { instance, userId: user.userId, name: user.name },
          action: "leave",
          notice: "disconnected",
        });
      }
    }
  }
}
