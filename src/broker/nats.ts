/**
 * The broker of a cluster: instances joined through NATS (its client port,
 * see `nats_tcp.ts`, or its WebSocket listener).
 *
 * - Each room has its own subjects in one JetStream stream, which is also
 *   every room's history. An instance reads a room (see `nats_feed.ts`) only
 *   while it has members there, so it pays for the rooms it serves, not for
 *   the whole cluster. Room events are published in batches, acknowledgements
 *   pipelined (see `nats_publisher.ts`).
 * - Names live in a KV bucket, taken with create-if-absent: a name is used
 *   only once that succeeded. Entries are kept alive by each instance's
 *   heartbeat and expire after `name_ttl`. Every instance watches the bucket,
 *   which tells it who is where.
 * - Each room's epoch is in a second bucket, so all instances agree on it.
 * - Bans, mutes and room settings are in a third, watched by every instance.
 * - Private messages, kicks and session handovers go straight to the
 *   target's instance over core NATS.
 * - When an instance stops sending heartbeats, the lowest-id survivor says
 *   goodbye for its users and releases their names.
 *
 * Everything read from NATS is checked (`wire.ts`); what cannot be read is
 * logged, counted and dropped.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { DiscardPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Metrics } from "../metrics.ts";
import { lookAlikeKey, nameKey } from "../names.ts";
import { RoomFeed } from "./nats_feed.ts";
import { connectNats } from "./nats_tcp.ts";
import { Publisher, roomSubject } from "./nats_publisher.ts";
import {
  type Broker,
  type BrokerHandler,
  type Handover,
  type KickNote,
  type ModerationRecord,
  type PrivateNote,
  randomId,
  type RemoteUser,
  type RoomNote,
} from "./types.ts";
import {
  type NameEntry,
  readHeartbeat,
  readKickNote,
  readModerationRecord,
  readNameEntry,
  readPrivateNote,
  readTakeoverReply,
  readTakeoverRequest,
  WireError,
} from "./wire.ts";

const STREAM = "CHAT_ROOMS";
const ROOM_SUBJECTS = "chat.room.>";
const NAMES_BUCKET = "chat_names";
/** Each room's epoch, so every instance numbers a room's log in the same one. */
const ROOMS_BUCKET = "chat_rooms";
/** Bans, mutes and room settings, which every instance applies. */
const MODERATION_BUCKET = "chat_moderation";
const HEARTBEAT_SUBJECT = "chat.heartbeat";
/** A room no local user is in any more is read this much longer, in case someone comes back. */
const UNFOLLOW_AFTER_MS = 10_000;
/** How long a handover may take before the resume goes on without it. */
const HANDOVER_TIMEOUT_MS = 3000;
/** How long a name claim waits for NATS to come back before it gives up... */
const CLAIM_WAIT_MS = 30_000;
/** ...and how many times it tries. */
const MAX_CLAIM_TRIES = 40;
/** Notes in one stream message: a message's seq is the stream's times this, plus its index. */
const SEQ_FACTOR = 1000;

const log = getLogger(["chat", "cluster"]);

/** Settings of {@linkcode NatsBroker.connect}, from `server.yaml`'s `cluster.nats`. */
export interface NatsBrokerOptions {
  /** URLs of NATS servers: `nats://127.0.0.1:4222` (or `tls://`), or `ws://` / `wss://`. */
  readonly servers: readonly string[];
  /** Seconds a name outlives its instance's last heartbeat. */
  readonly nameTtl: number;
  /** Seconds between heartbeats. */
  readonly heartbeat: number;
  /** Messages kept per room. */
  readonly historySize: number;
  /** Room events kept while NATS is away. */
  readonly maxOutbox: number;
  /** What NATS asks of its clients, if anything. */
  readonly credentials?: { readonly user: string; readonly pass: string } | {
    readonly token: string;
  };
  /** Where cluster troubles are counted and reported. */
  readonly metrics?: Metrics;
}

/** KV keys allow only a few characters, so keys are stored base64url-encoded. */
function bucketKey(key: string): string {
  const bytes = new TextEncoder().encode(key);
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
}

function decodeBucketKey(key: string): string {
  const base64 = key.replaceAll("-", "+").replaceAll("_", "/");
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (char) => char.charCodeAt(0)));
}

/** A name held by another instance, with the revision of its entry. */
interface RemoteEntry extends NameEntry {
  readonly revision: number;
}

/** Instances joined through NATS. */
export class NatsBroker implements Broker {
  readonly instance: string = randomId();
  readonly #options: NatsBrokerOptions;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #names: KV;
  readonly #rooms: KV;
  readonly #moderation: KV;
  readonly #publisher: Publisher;
  /** The moderation records, by key, as the bucket holds them. */
  readonly #records = new Map<string, ModerationRecord>();
  #handler: BrokerHandler | undefined;
  /** Users of other instances, by bucket key. */
  readonly #remote = new Map<string, RemoteEntry>();
  /** The same users by {@linkcode lookAlikeKey}: a name is taken when either key is. */
  readonly #remoteByLookAlike = new Map<string, RemoteEntry>();
  /** The same users by room key, then bucket key, so a room's members cost O(room). */
  readonly #remoteByRoom = new Map<string, Map<string, RemoteEntry>>();
  /** Names this instance holds, by name key. */
  readonly #local = new Map<string, NameEntry>();
  /** When each other instance last showed signs of life. */
  readonly #lastSeen = new Map<string, number>();
  /** Each room's epoch, by room key. */
  readonly #epochs = new Map<string, string>();
  /** The rooms this instance reads, by room key. */
  readonly #feeds = new Map<string, RoomFeed>();
  /** Rooms about to be no longer read, by room key. */
  readonly #unfollowing = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #subscriptions: Subscription[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #connected = true;
  /** Resolves when NATS is back, while it is away. */
  #back: Promise<void> = Promise.resolve();
  #markBack: () => void = () => {};

  private constructor(
    options: NatsBrokerOptions,
    nc: NatsConnection,
    jsm: JetStreamManager,
    buckets: { names: KV; rooms: KV; moderation: KV },
  ) {
    this.#options = options;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#names = buckets.names;
    this.#rooms = buckets.rooms;
    this.#moderation = buckets.moderation;
    this.#publisher = new Publisher(this.#js, {
      maxOutbox: options.maxOutbox,
      metrics: options.metrics,
    });
    options.metrics?.gauges.push(
      {
        name: "chat_cluster_connected",
        help: "1 while the link to NATS works, else 0.",
        read: () => this.#connected ? 1 : 0,
      },
      {
        name: "chat_cluster_outbox",
        help: "Room events waiting to be stored in the stream.",
        read: () => this.#publisher.waiting,
      },
      {
        name: "chat_cluster_rooms_followed",
        help: "Rooms this instance reads from the stream.",
        read: () => this.#feeds.size,
      },
      {
        name: "chat_cluster_lag",
        help: "Stream messages of followed rooms not yet read.",
        read: () => [...this.#feeds.values()].reduce((sum, feed) => sum + feed.lag, 0),
      },
    );
  }

  /** Connects to NATS and makes sure the stream and the buckets exist. */
  static async connect(options: NatsBrokerOptions): Promise<NatsBroker> {
    const nc = await connectNats({
      servers: [...options.servers],
      ...options.credentials,
      name: "chat-server",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5000,
      // Error objects for async traces cost more than the rest of a publish.
      noAsyncTraces: true,
    });
    const jsm = await jetstreamManager(nc);
    const stream = {
      name: STREAM,
      subjects: [ROOM_SUBJECTS],
      storage: StorageType.File,
      max_msgs_per_subject: Math.max(1, options.historySize),
      discard: DiscardPolicy.Old,
      allow_direct: true,
    };
    try {
      await jsm.streams.info(STREAM);
      await jsm.streams.update(STREAM, stream);
    } catch {
      await jsm.streams.add(stream);
    }
    const kvm = new Kvm(nc);
    const names = await kvm.create(NAMES_BUCKET, {
      history: 1,
      ttl: options.nameTtl * 1000,
      storage: StorageType.File,
    });
    const rooms = await kvm.create(ROOMS_BUCKET, { history: 1, storage: StorageType.File });
    const moderation = await kvm.create(MODERATION_BUCKET, {
      history: 1,
      storage: StorageType.File,
    });
    return new NatsBroker(options, nc, jsm, { names, rooms, moderation });
  }

  get healthy(): boolean {
    return this.#connected;
  }

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  /** Starts watching names and epochs and listening for what is addressed to this instance. */
  async start(): Promise<void> {
    const handler = this.#handler;
    if (handler === undefined) throw new TypeError("Cannot start a broker with no handler");
    await this.#watchNames();
    await this.#watchEpochs();
    await this.#watchModeration();
    this.#subscribe(HEARTBEAT_SUBJECT, (data) => {
      const instance = readHeartbeat(data);
      if (instance !== this.instance) this.#lastSeen.set(instance, Date.now());
    });
    this.#subscribe(
      `chat.pm.${this.instance}`,
      (data) => handler.deliverPrivate(readPrivateNote(data)),
    );
    this.#subscribe(
      `chat.kick.${this.instance}`,
      (data) => handler.deliverKick(readKickNote(data)),
    );
    this.#listenForHandovers(handler);
    this.#watchStatus();
    this.#timer = setInterval(() => this.#beat(), this.#options.heartbeat * 1000);
    this.#beat();
    log.info("Joined the cluster as instance {instance}", { instance: this.instance });
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
    this.#rooms.create(bucketKey(key), epoch).catch(async (error) => {
      const current = await this.#rooms.get(bucketKey(key)).catch(() => null);
      if (current !== null && current.operation === "PUT") {
        this.#epochs.set(key, current.string());
      } else {
        log.warning("Cannot record the epoch of room {room}: {error}", { room, error });
      }
    });
    return epoch;
  }

  publishRoomNote(note: RoomNote): boolean {
    return this.#publisher.publish(note);
  }

  /** Saved in the moderation bucket; every instance, this one included, hears of it there. */
  async saveRecord(key: string, record: ModerationRecord | undefined): Promise<boolean> {
    try {
      if (record === undefined) await this.#moderation.delete(bucketKey(key));
      else await this.#moderation.put(bucketKey(key), JSON.stringify(record));
      return true;
    } catch (error) {
      log.error("Cannot save a moderation record: {error}", { error });
      return false;
    }
  }

  records(): ReadonlyMap<string, ModerationRecord> {
    return this.#records;
  }

  /** Deleted only at the revision that holds the expired record: a newer one stays. */
  async removeExpired(key: string, at: number): Promise<void> {
    const entry = await this.#moderation.get(bucketKey(key));
    if (entry === null || entry.operation !== "PUT") return;
    if (readModerationRecord(entry.string()).at !== at) return;
    await this.#moderation.delete(bucketKey(key), { previousSeq: entry.revision });
  }

  publishKick(note: KickNote, to: RemoteUser): void {
    this.#nc.publish(`chat.kick.${to.instance}`, JSON.stringify(note));
  }

  publishPrivate(note: PrivateNote, to: RemoteUser): void {
    this.#nc.publish(`chat.pm.${to.instance}`, JSON.stringify(note));
  }

  findRemote(name: string): RemoteUser | undefined {
    return this.#remote.get(bucketKey(nameKey(name))) ??
      this.#remoteByLookAlike.get(lookAlikeKey(name));
  }

  remoteUsers(): Iterable<RemoteUser> {
    return this.#remote.values();
  }

  remoteMembers(room: string): Iterable<RemoteUser> {
    return this.#remoteByRoom.get(nameKey(room))?.values() ?? [];
  }

  /**
   * Takes `name` with create-if-absent, so two instances can never both
   * grant it. While NATS is away, the claim waits for it (up to a limit).
   */
  async claim(
    name: string,
    holder: { userId: number; room: string; token: string },
  ): Promise<boolean> {
    const key = nameKey(name);
    const entry: NameEntry = {
      name,
      room: holder.room,
      instance: this.instance,
      userId: holder.userId,
    };
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let tries = 1;; tries++) {
      try {
        await this.#names.create(bucketKey(key), JSON.stringify(entry));
        this.#local.set(key, entry);
        return true;
      } catch (error) {
        const current = await this.#names.get(bucketKey(key)).catch(() => undefined);
        if (current !== undefined && current !== null && current.operation === "PUT") {
          // Ours already (a release still on its way), or someone else's.
          if (this.#local.has(key) || !this.#isOwnEntry(current.string())) return false;
          await this.#names.put(bucketKey(key), JSON.stringify(entry));
          this.#local.set(key, entry);
          return true;
        }
        if (Date.now() > deadline || tries >= MAX_CLAIM_TRIES) {
          log.warning("Cannot claim the name {name}: {error}", { name, error });
          return false;
        }
        // Released meanwhile: try again at once; NATS away: wait for it.
        if (current === undefined) {
          await Promise.race([this.#back, new Promise((resolve) => setTimeout(resolve, 1000))]);
        }
      }
    }
  }

  #isOwnEntry(data: string): boolean {
    try {
      return readNameEntry(data).instance === this.instance;
    } catch (error) {
      this.#malformed(`$KV.${NAMES_BUCKET}`, error);
      return false;
    }
  }

  announce(name: string, room: string, userId: number): void {
    const key = nameKey(name);
    const entry: NameEntry = { name, room, instance: this.instance, userId };
    const held = this.#local.get(key);
    if (held !== undefined && held.room === room && held.userId === userId) return;
    this.#local.set(key, entry);
    this.#names.put(bucketKey(key), JSON.stringify(entry)).catch((error) => {
      log.warning("Cannot record that {name} is in {room}: {error}", { name, room, error });
    });
  }

  withdraw(name: string): void {
    const key = nameKey(name);
    if (!this.#local.delete(key)) return;
    this.#names.delete(bucketKey(key)).catch((error) => {
      log.warning("Cannot release the name {name}: {error}", { name, error });
    });
  }

  /** Asks the instance holding `name` to hand its session over; the name is then ours. */
  async takeOver(
    name: string,
    token: string,
    userId: number,
    verified = false,
  ): Promise<Handover | undefined> {
    const key = nameKey(name);
    const holder = this.#remote.get(bucketKey(key));
    if (holder === undefined) return undefined;
    let reply;
    try {
      const answer = await this.#nc.request(
        `chat.ctl.${holder.instance}`,
        JSON.stringify({ name, token, verified }),
        { timeout: HANDOVER_TIMEOUT_MS },
      );
      reply = readTakeoverReply(answer.string());
    } catch (error) {
      log.warning("Instance {instance} did not hand {name} over: {error}", {
        instance: holder.instance,
        name,
        error,
      });
      return undefined;
    }
    if (!reply.ok) return undefined;
    const entry: NameEntry = { name, room: reply.room, instance: this.instance, userId };
    this.#local.set(key, entry);
    await this.#names.put(bucketKey(key), JSON.stringify(entry)).catch((error) => {
      log.warning("Cannot record that {name} moved here: {error}", { name, error });
    });
    return { room: reply.room, privates: reply.privates };
  }

  follow(room: string): void | Promise<void> {
    const key = nameKey(room);
    const leaving = this.#unfollowing.get(key);
    if (leaving !== undefined) {
      clearTimeout(leaving);
      this.#unfollowing.delete(key);
    }
    let feed = this.#feeds.get(key);
    if (feed === undefined) {
      feed = new RoomFeed({
        js: this.#js,
        jsm: this.#jsm,
        stream: STREAM,
        room,
        deliver: (notes, seq, live) => this.#deliver(room, notes, seq, live),
        malformed: (subject, error) => this.#malformed(subject, error),
      });
      this.#feeds.set(key, feed);
    }
    return feed.caughtUp ? undefined : feed.ready;
  }

  unfollow(room: string): void {
    const key = nameKey(room);
    if (!this.#feeds.has(key) || this.#unfollowing.has(key)) return;
    this.#unfollowing.set(
      key,
      setTimeout(() => {
        this.#unfollowing.delete(key);
        this.#feeds.get(key)?.stop();
        this.#feeds.delete(key);
        this.#handler?.forgetHistory(room);
      }, UNFOLLOW_AFTER_MS),
    );
  }

  roomRemoved(room: string): void {
    const key = nameKey(room);
    this.#epochs.delete(key);
    this.#rooms.delete(bucketKey(key)).catch((error) => {
      log.warning("Cannot forget the epoch of room {room}: {error}", { room, error });
    });
    for (const kind of ["m", "p"] as const) {
      this.#jsm.streams.purge(STREAM, { filter: roomSubject(room, kind) }).catch((error) => {
        log.warning("Cannot remove the history of room {room}: {error}", { room, error });
      });
    }
  }

  /** Stores what waits (while NATS is there), releases this instance's names and disconnects. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#publisher.drained();
    this.#publisher.close();
    for (const timer of this.#unfollowing.values()) clearTimeout(timer);
    for (const feed of this.#feeds.values()) feed.stop();
    await Promise.allSettled(
      [...this.#local.keys()].map((key) => this.#names.delete(bucketKey(key))),
    );
    this.#local.clear();
    await this.#nc.drain().catch((error) => {
      log.warning("Cannot leave NATS cleanly: {error}", { error });
    });
  }

  /** Delivers the notes of one stream message of `room`, each numbered after the stream's. */
  #deliver(room: string, notes: RoomNote[], seq: number, live: boolean): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    this.#options.metrics?.clusterNotesReceived.inc(notes.length);
    const epoch = this.epochOf(room);
    notes.forEach((note, index) => {
      if (note.kind === "message") {
        handler.deliverRoomNote(note, { epoch, seq: seq * SEQ_FACTOR + index });
      } else if (live) {
        // Arrivals and departures from before this instance followed the room are not news.
        handler.deliverRoomNote(note);
      }
    });
  }

  #malformed(subject: string, error: unknown): void {
    this.#options.metrics?.clusterMalformed.inc();
    log.warning("Dropped a message on {subject} that could not be read: {error}", {
      subject,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  #setRemote(key: string, user: RemoteEntry): void {
    this.#deleteRemote(key);
    this.#remote.set(key, user);
    this.#remoteByLookAlike.set(lookAlikeKey(user.name), user);
    const room = nameKey(user.room);
    let members = this.#remoteByRoom.get(room);
    if (members === undefined) this.#remoteByRoom.set(room, members = new Map());
    members.set(key, user);
  }

  #deleteRemote(key: string): void {
    const user = this.#remote.get(key);
    if (user === undefined) return;
    this.#remote.delete(key);
    const alike = lookAlikeKey(user.name);
    if (this.#remoteByLookAlike.get(alike) === user) this.#remoteByLookAlike.delete(alike);
    const room = nameKey(user.room);
    const members = this.#remoteByRoom.get(room);
    members?.delete(key);
    if (members?.size === 0) this.#remoteByRoom.delete(room);
  }

  async #watchNames(): Promise<void> {
    const watch = await this.#names.watch();
    (async () => {
      for await (const entry of watch) {
        if (entry.operation !== "PUT") {
          this.#deleteRemote(entry.key);
          continue;
        }
        try {
          const user = readNameEntry(entry.string());
          if (user.instance === this.instance) {
            this.#deleteRemote(entry.key);
            continue;
          }
          const key = nameKey(user.name);
          // A name we held was taken over by another instance's claim or handover.
          if (this.#local.has(key) && bucketKey(key) === entry.key) {
            this.#local.delete(key);
            this.#handler?.nameLost(user.name);
          }
          this.#setRemote(entry.key, { ...user, revision: entry.revision });
          this.#lastSeen.set(user.instance, Date.now());
        } catch (error) {
          this.#malformed(`$KV.${NAMES_BUCKET}.${entry.key}`, error);
        }
      }
    })();
  }

  async #watchEpochs(): Promise<void> {
    const watch = await this.#rooms.watch();
    (async () => {
      for await (const entry of watch) {
        try {
          const key = decodeBucketKey(entry.key);
          if (entry.operation !== "PUT") continue;
          const epoch = entry.string();
          if (!/^[0-9a-f]{8}$/.test(epoch)) throw new WireError("an epoch is not 8 hex digits");
          this.#epochs.set(key, epoch);
        } catch (error) {
          this.#malformed(`$KV.${ROOMS_BUCKET}.${entry.key}`, error);
        }
      }
    })();
  }

  /**
   * Follows the moderation bucket: its records at start, then every change,
   * each handed to the chatroom (which removes users a new ban names).
   */
  async #watchModeration(): Promise<void> {
    const watch = await this.#moderation.watch();
    (async () => {
      for await (const entry of watch) {
        try {
          const key = decodeBucketKey(entry.key);
          if (entry.operation !== "PUT") {
            this.#records.delete(key);
            this.#handler?.recordChanged(key, undefined);
            continue;
          }
          const record = readModerationRecord(entry.string());
          this.#records.set(key, record);
          this.#handler?.recordChanged(key, record);
        } catch (error) {
          this.#malformed(`$KV.${MODERATION_BUCKET}.${entry.key}`, error);
        }
      }
    })();
  }

  /** Hands a local session to the instance where it is resumed, if its token is right. */
  #listenForHandovers(handler: BrokerHandler): void {
    const subscription = this.#nc.subscribe(`chat.ctl.${this.instance}`);
    this.#subscriptions.push(subscription);
    (async () => {
      for await (const message of subscription) {
        try {
          const { name, token, verified } = readTakeoverRequest(message.string());
          const handover = handler.handOver(name, token, verified);
          if (handover !== undefined) this.#local.delete(nameKey(name));
          message.respond(JSON.stringify(
            handover === undefined ? { ok: false } : {
              ok: true,
              room: handover.room,
              privates: handover.privates,
            },
          ));
        } catch (error) {
          this.#malformed(message.subject, error);
          message.respond(JSON.stringify({ ok: false }));
        }
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
          this.#malformed(subject, error);
        }
      }
    })();
  }

  #watchStatus(): void {
    (async () => {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect" && this.#connected) {
          this.#connected = false;
          this.#back = new Promise((resolve) => this.#markBack = resolve);
          this.#publisher.connected = false;
          this.#handler?.setDegraded(true);
        } else if (status.type === "reconnect" && !this.#connected) {
          this.#connected = true;
          this.#markBack();
          // Nobody could be heard while we were away: give everyone a fresh start.
          for (const instance of this.#lastSeen.keys()) this.#lastSeen.set(instance, Date.now());
          this.#handler?.setDegraded(false);
          this.#beat();
          this.#publisher.connected = true;
          for (const feed of this.#feeds.values()) feed.restart();
        }
      }
    })();
  }

  /** Keeps our names alive, tells the others we are, and lets go of instances that are not. */
  #beat(): void {
    if (!this.#connected) return;
    this.#nc.publish(HEARTBEAT_SUBJECT, JSON.stringify({ instance: this.instance }));
    for (const [key, entry] of this.#local) {
      this.#names.put(bucketKey(key), JSON.stringify(entry)).catch((error) => {
        log.warning("Cannot keep the name {name} alive: {error}", { name: entry.name, error });
      });
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
        this.#names.delete(key, { previousSeq: user.revision }).catch((error) => {
          log.warning("Cannot release the name {name}: {error}", { name: user.name, error });
        });
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
