/**
 * What a cluster keeps in NATS: the rooms' stream (every room's history) and
 * the buckets of names, epochs and moderation records, made or brought up to
 * date when an instance connects.
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/nats-core";
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { getLogger } from "@logtape/logtape";
import { roomSubject } from "./publisher.ts";

const log = getLogger(["chat", "cluster"]);

export const STREAM = "CHAT_ROOMS";
export const ROOM_SUBJECTS = "chat.room.>";
export const NAMES_BUCKET = "chat_names";
/** Each room's epoch, so every instance numbers a room's log in the same one. */
export const ROOMS_BUCKET = "chat_rooms";
/** Bans, mutes and room settings, which every instance applies. */
export const MODERATION_BUCKET = "chat_moderation";
/** The room stream's size at most: past it, its oldest messages are dropped. */
export const STREAM_MAX_BYTES = 512 * 1024 * 1024;

/** What {@linkcode openStorage} needs to know. */
export interface StorageOptions {
  /** Seconds a name outlives its instance's last heartbeat. */
  readonly nameTtl: number;
  /** Messages kept per room. */
  readonly historySize: number;
  /** Stream messages NATS keeps per room and subject. */
  readonly keptPerRoom: number;
}

/** Makes sure the stream and the buckets exist, as this version wants them. */
export async function openStorage(
  nc: NatsConnection,
  options: StorageOptions,
): Promise<{ jsm: JetStreamManager; buckets: { names: KV; rooms: KV; moderation: KV } }> {
  const jsm = await jetstreamManager(nc);
  const stream = {
    name: STREAM,
    subjects: [ROOM_SUBJECTS],
    storage: StorageType.File,
    // More than the history, so that an instance that fell behind still reads everything.
    max_msgs_per_subject: Math.max(options.keptPerRoom, options.historySize),
    // Below the shipped configs' file storage (1 and 2 GB), so old messages go, not new ones.
    max_bytes: STREAM_MAX_BYTES,
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
  return { jsm, buckets: { names, rooms, moderation } };
}

/**
 * Purges `room`'s messages from `stream`, unless one came since `quietSince`
 * (milliseconds since the Unix epoch), and says whether it did: an instance
 * removing a room it did not follow cannot tell whether others served it,
 * and the stream is every instance's history. Only what the stream held
 * when it was looked at goes: a message stored while the purge runs stays.
 */
export async function purgeIfQuiet(
  jsm: JetStreamManager,
  stream: string,
  room: string,
  quietSince: number,
): Promise<boolean> {
  const { state } = await jsm.streams.info(stream);
  // null when the room holds no message (any more): nothing says it was used.
  const last = await jsm.streams.getMessage(stream, { last_by_subj: roomSubject(room, "m") });
  if (last !== null && last.time.getTime() > quietSince) {
    log.debug("Kept the history of room {room}: it was not quiet elsewhere", { room });
    return false;
  }
  for (const kind of ["m", "p"] as const) {
    await jsm.streams.purge(stream, { filter: roomSubject(room, kind), seq: state.last_seq + 1 });
  }
  return true;
}
