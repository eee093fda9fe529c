/**
 * The broker of a cluster: instances joined through NATS (its client port,
 * see `tcp.ts`, or its WebSocket listener).
 *
 * - Each room has its own subjects in one JetStream stream, which is also
 *   every room's history. An instance reads a room (see `feed.ts`) only
 *   while it has members there, so it pays for the rooms it serves, not for
 *   the whole cluster. Room events are published in batches, one per room in
 *   flight, many rooms at once (see `publisher.ts`).
 * - Names live in a KV bucket, taken with create-if-absent: a name is used
 *   only once that succeeded (see `names.ts`).
 * - Each room's epoch is in a second bucket, so all instances agree on it.
 * - Bans, mutes and room settings are in a third, watched by every instance
 *   (see `records.ts`).
 * - Kicks, session handovers and open mode's private messages go straight
 *   to the target's instance over core NATS (token mode's are stored in
 *   the target's inbox, a log of the stream), as do the frames of devices
 *   relayed to their account's session (see `relay.ts`).
 * - When an instance stops sending heartbeats, the survivors say goodbye for
 *   its users (each goodbye delivered once) and release their names; an
 *   instance that could not renew its names for that long lets them go
 *   first (see `liveness.ts`).
 *
 * Everything read from NATS is checked (`wire.ts`); what cannot be read is
 * logged, counted and dropped.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Metrics } from "../../metrics.ts";
import { StreamAcks } from "./acks.ts";
import { InstanceMail } from "./control.ts";
import { ClusterEpochs } from "./epochs.ts";
import { clusterGauges } from "./gauges.ts";
import { RoomFeed } from "./feed.ts";
import { Liveness } from "./liveness.ts";
import { ClusterNames } from "./names.ts";
import { ClusterRecords } from "./records.ts";
import { NatsRelay } from "./relay.ts";
import {
  MODERATION_BUCKET,
  NAMES_BUCKET,
  openStorage,
  purgeIfQuiet,
  ROOMS_BUCKET,
  STREAM,
} from "./storage.ts";
import { connectNats } from "./tcp.ts";
import { Publisher } from "./publisher.ts";
import { TypingLink } from "./typing.ts";
import { malformedReporter } from "./wire.ts";
import {
  type Broker,
  type BrokerHandler,
  type Cluster,
  type Handover,
  inboxOwner,
  type LocalHolder,
  logKey,
  type NameDirectory,
  randomId,
  type Records,
  type RoomLog,
  type RoomNote,
  type TypingNote,
} from "../types.ts";

/** A room no local user is in any more is read this much longer, in case someone comes back. */
const UNFOLLOW_AFTER_MS = 10_000;
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
  /** `max_message_len`: what arrives longer than a user could send is refused. */
  readonly maxMessageLen: number;
  /** Room events kept while NATS is away. */
  readonly maxOutbox: number;
  /** Stream messages NATS keeps per room and subject. */
  readonly keptPerRoom: number;
  /** What NATS asks of its clients, if anything. */
  readonly credentials?: { readonly user: string; readonly pass: string } | {
    readonly token: string;
  };
  /** Where cluster troubles are counted and reported. */
  readonly metrics?: Metrics;
}

/** Instances joined through NATS. */
export class NatsBroker implements Broker {
  readonly instance: string = randomId();
  readonly #options: NatsBrokerOptions;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #names: ClusterNames;
  readonly #publisher: Publisher;
  /** Bans, mutes and room settings. */
  readonly #records: ClusterRecords;
  readonly #mail: InstanceMail;
  readonly #liveness: Liveness;
  readonly #typing: TypingLink;
  readonly #relay: NatsRelay;
  #handler: BrokerHandler | undefined;
  readonly log: RoomLog = {
    epochOf: (room) => this.#epochs.of(room),
    publish: (note) => this.#publisher.publish(note),
    follow: (room) => this.#follow(room),
    unfollow: (room) => this.#unfollow(room),
    removed: (room, quietSince) => this.#removed(room, quietSince),
  };
  /** Saved in the moderation bucket; every instance, this one included, hears of it there. */
  readonly records: Records;
  readonly cluster: Cluster;
  readonly #epochs: ClusterEpochs;
  /** The rooms this instance reads, by room key. */
  readonly #feeds = new Map<string, RoomFeed>();
  /** Rooms about to be no longer read, by room key. */
  readonly #unfollowing = new Map<string, ReturnType<typeof setTimeout>>();
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
    this.#names = new ClusterNames({
      instance: this.instance,
      bucket: buckets.names,
      bucketName: NAMES_BUCKET,
      back: () => this.#back,
      lost: (name) => this.#handler?.nameLost(name),
      seen: (instance) => this.#liveness.seen(instance),
      lapse: (options.nameTtl + options.heartbeat) * 1000,
      malformed: (subject, error) => this.#malformed(subject, error),
    });
    this.#epochs = new ClusterEpochs({
      bucket: buckets.rooms,
      bucketName: ROOMS_BUCKET,
      malformed: (subject, error) => this.#malformed(subject, error),
    });
    this.#records = new ClusterRecords({
      bucket: buckets.moderation,
      bucketName: MODERATION_BUCKET,
      // Each is handed to the chatroom, which removes the users a new ban names.
      changed: (key, record) => this.#handler?.recordChanged(key, record),
      malformed: (subject, error) => this.#malformed(subject, error),
    });
    this.#publisher = new Publisher(new StreamAcks(nc), {
      instance: this.instance,
      maxOutbox: options.maxOutbox,
      maxPayload: () => this.maxPayload,
      metrics: options.metrics,
    });
    this.#mail = new InstanceMail({
      nc,
      instance: this.instance,
      malformed: (subject, error) => this.#malformed(subject, error),
      handedOver: (name) => this.#names.handedOver(name),
      oversized: () => options.metrics?.clusterOversized.inc(),
      maxText: options.maxMessageLen,
    });
    this.#liveness = new Liveness({
      nc,
      instance: this.instance,
      names: this.#names,
      nameTtl: options.nameTtl,
      heartbeat: options.heartbeat,
      connected: () => this.#connected,
      publish: (note) => void this.#publisher.publish(note, { goodbye: true }),
      drained: () => this.#publisher.drained(),
      malformed: (subject, error) => this.#malformed(subject, error),
      lapsed: (name) => this.#handler?.nameLapsed(name),
    });
    this.#typing = new TypingLink({
      nc,
      instance: this.instance,
      holderOf: (name) => this.#names.holderOf(name),
      deliver: (note) => this.#handler?.deliverTyping(note),
      malformed: (subject, error) => this.#malformed(subject, error),
    });
    this.#relay = new NatsRelay({
      nc,
      instance: this.instance,
      maxPayload: () => this.maxPayload,
      malformed: (subject, error) => this.#malformed(subject, error),
      lost: () => options.metrics?.clusterRelaysLost.inc(),
      pingMs: options.heartbeat * 1000,
      silentMs: options.nameTtl * 1000,
    });
    const records = this.#records;
    this.records = {
      save: (key, record) => records.save(key, record),
      removeExpired: (key, at) => records.removeExpired(key, at),
      all: () => records.all(),
    };
    this.cluster = { names: this.#directory(), mail: this.#mail, relay: this.#relay };
    options.metrics?.gauges.push(...clusterGauges({
      connected: () => this.#connected,
      outbox: () => this.#publisher.waiting,
      feeds: () => this.#feeds,
      relayed: () => this.#relay.size,
    }));
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
    const { jsm, buckets } = await openStorage(nc, options);
    return new NatsBroker(options, nc, jsm, buckets);
  }

  /** Whether NATS is there and takes what is published. */
  get healthy(): boolean {
    return this.#connected && this.#publisher.healthy;
  }

  /** Whether the NATS server lets in only clients with credentials. */
  get authRequired(): boolean {
    return this.#nc.info?.auth_required === true;
  }

  /** The largest message the NATS server takes, in bytes (1 MiB unless it says otherwise). */
  get maxPayload(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  attach(handler: BrokerHandler): void {
    this.#handler = handler;
  }

  /** Shown here at once; sent to the others only while NATS is there (late, it is not news). */
  typing(note: TypingNote): void {
    this.#handler?.deliverTyping(note);
    if (this.#connected) this.#typing.send(note);
  }

  /** Starts watching names and epochs and listening for what is addressed to this instance. */
  async start(): Promise<void> {
    const handler = this.#handler;
    if (handler === undefined) throw new TypeError("Cannot start a broker with no handler");
    await this.#names.watch();
    await this.#names.instances.register();
    await this.#epochs.watch();
    await this.#records.watch();
    this.#mail.listen(handler);
    this.#relay.listen();
    this.#watchStatus();
    this.#liveness.start();
    log.info("Joined the cluster as instance {instance}", { instance: this.instance });
  }

  /** The names of the cluster, as the chat asks about them. */
  #directory(): NameDirectory {
    const names = this.#names;
    return {
      find: (name) => names.find(name),
      users: () => names.remoteUsers(),
      members: (room) => names.remoteMembers(room),
      // Create-if-absent, so two instances can never both grant a name; waits while NATS is away.
      claim: (name, holder) => names.claim(name, holder),
      announce: (name, holder) => names.announce(name, holder),
      withdraw: (name) => names.withdraw(name),
      takeOver: (name, token, holder, verified) => this.#takeOver(name, token, holder, verified),
    };
  }

  /** Asks the instance holding `name` to hand its session over; the name is then ours. */
  async #takeOver(
    name: string,
    token: string,
    holder: LocalHolder,
    verified: boolean,
  ): Promise<Handover | undefined> {
    const current = this.#names.holderOf(name);
    if (current === undefined) return undefined;
    const handover = await this.#mail.takeOver(current.instance, { name, token, verified });
    if (handover === undefined) return undefined;
    await this.#names.movedHere(name, { ...holder, room: handover.room }, current);
    return handover;
  }

  #follow(room: string): void | Promise<void> {
    const key = logKey(room);
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
        maxText: this.#options.maxMessageLen,
        deliver: (notes, seq, live) => this.#deliver(room, notes, seq, live),
        readBack: (id, subject, data) => this.#publisher.readBack(id, subject, data),
        malformed: (subject, error) => this.#malformed(subject, error),
        lost: (messages) => {
          this.#options.metrics?.clusterLost.inc(messages);
          log.warning(
            "{messages} stream messages of room {room} were dropped before they were read",
            { messages, room },
          );
          this.#handler?.messagesLost(room);
        },
      });
      this.#feeds.set(key, feed);
      // Nobody types in an inbox.
      if (inboxOwner(room) === undefined) this.#typing.follow(room);
    }
    return feed.caughtUp ? undefined : feed.ready;
  }

  #unfollow(room: string): void {
    const key = logKey(room);
    if (!this.#feeds.has(key) || this.#unfollowing.has(key)) return;
    this.#unfollowing.set(
      key,
      setTimeout(() => {
        this.#unfollowing.delete(key);
        this.#feeds.get(key)?.stop();
        this.#feeds.delete(key);
        this.#typing.unfollow(room);
        this.#handler?.forgetHistory(room);
      }, UNFOLLOW_AFTER_MS),
    );
  }

  /** Purges a room removed here from the stream, unless it was not quiet elsewhere. */
  #removed(room: string, quietSince: number): void {
    purgeIfQuiet(this.#jsm, STREAM, room, quietSince).then((purged) => {
      if (purged) this.#epochs.forget(room);
    }, (error) => {
      log.warning("Cannot remove the history of room {room}: {error}", { room, error });
    });
  }

  /** Stores what waits (while NATS is there), releases this instance's names and disconnects. */
  async close(): Promise<void> {
    this.#liveness.stop();
    this.#mail.close();
    this.#relay.close();
    await this.#publisher.drained();
    this.#publisher.close();
    for (const timer of this.#unfollowing.values()) clearTimeout(timer);
    for (const feed of this.#feeds.values()) feed.stop();
    this.#typing.stop();
    await this.#names.releaseAll();
    await this.#nc.drain().catch((error) => {
      log.warning("Cannot leave NATS cleanly: {error}", { error });
    });
  }

  /** Delivers the notes of one stream message of `room`, each numbered after the stream's. */
  #deliver(
    room: string,
    notes: readonly (RoomNote | undefined)[],
    seq: number,
    live: boolean,
  ): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    this.#options.metrics?.clusterNotesReceived.inc(notes.length);
    const epoch = this.#epochs.of(room);
    notes.forEach((note, index) => {
      if (note === undefined) return;
      if (note.kind === "message") {
        handler.deliverRoomNote(note, { epoch, seq: seq * SEQ_FACTOR + index });
      } else if (live) {
        // Arrivals and departures from before this instance followed the room are not news.
        handler.deliverRoomNote(note);
      }
    });
  }

  readonly #malformed = malformedReporter(() => this.#options.metrics?.clusterMalformed.inc());

  #watchStatus(): void {
    (async () => {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect" && this.#connected) {
          this.#connected = false;
          this.#back = new Promise((resolve) => this.#markBack = resolve);
          this.#publisher.connected = false;
          this.#relay.disconnected();
          this.#handler?.setDegraded(true);
        } else if (status.type === "reconnect" && !this.#connected) {
          this.#connected = true;
          this.#markBack();
          // Nobody could be heard while we were away: give everyone a fresh start.
          this.#liveness.forgive();
          this.#handler?.setDegraded(false);
          this.#liveness.beat();
          this.#publisher.connected = true;
          for (const feed of this.#feeds.values()) feed.restart();
        }
      }
    })().catch((error) =>
      log.error("Stopped following {what}: {error}", { what: "the link's status", error })
    );
  }
}
