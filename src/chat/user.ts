/**
 * A connected user, as the chat logic sees it: no socket, only a
 * {@linkcode Sink} to send events to.
 *
 * @module
 */

import type { Identity, Role } from "../auth/tokens.ts";
import type { PrivateNote } from "../broker/types.ts";
import { addressKey } from "../net/ip.ts";
import type { Place, PrivateEvent, Sink } from "../vocabulary/events.ts";
import type { FloodGuard, TokenBucket } from "../limits.ts";
import { Devices } from "./devices.ts";
import { ReadPositions } from "./read_positions.ts";
import type { Room } from "./room.ts";
import type { SeenPosition } from "../vocabulary/arguments.ts";
import type { ClientRequest } from "../vocabulary/requests.ts";

/**
 * Where a dropped session's events go while it lingers, waiting to be
 * resumed: room messages are in the room's history already, so only private
 * messages are kept, up to a bound.
 */
export class LingeringSink implements Sink {
  /** When the session ends unless resumed (milliseconds since the Unix epoch). */
  readonly until: number;
  /** The private messages kept for the user's return, oldest first. */
  readonly kept: PrivateEvent[] = [];
  /** Private messages not kept, for want of room. */
  dropped = 0;
  readonly #limit: number;

  constructor(until: number, limit: number) {
    this.until = until;
    this.#limit = limit;
  }

  send(event: Parameters<Sink["send"]>[0]): void {
    // One kept in the account's inbox is replayed from there on resume.
    if (event.type !== "private" || event.seq !== undefined) return;
    if (this.kept.length < this.#limit) this.kept.push(event);
    else this.dropped++;
  }

  close(): void {}

  /** The kept private messages, as they travel to another instance picking the session up. */
  notes(): PrivateNote[] {
    return this.kept.map(({ id, sentAt, from, to, text }) => ({ id, sentAt, from, to, text }));
  }
}

/** A user's request, and the device it came from (where answers to it go). */
export interface Asked {
  readonly request: ClientRequest;
  readonly from: Sink;
}

/** What a user starts with. */
export interface UserOptions {
  readonly sink: Sink;
  readonly flood: FloodGuard;
  readonly room: Room<User>;
  /** Whether the client can resume, so the session lingers when its connection drops. */
  readonly resumable: boolean;
  /** The client's address, when known. */
  readonly address?: string;
  /** Token mode: who the signed token says the user is. */
  readonly identity?: Identity;
}

/** A user in the chat. */
export class User {
  /** Unique for the life of the process; used in logs. */
  readonly id: number;
  /** This user's flood control. */
  readonly flood: FloodGuard;
  /** Secret that lets a new connection pick this session up (see `resume`). */
  readonly token: string = crypto.randomUUID();
  /** Whether a client of the session can resume it (with several devices: once any can). */
  resumable: boolean;
  /** The client's address, when known (not for users of tests)... */
  readonly address: string | undefined;
  /** ...and the key per-address limits count it under (an IPv6 address's /64). */
  readonly addressKey: string | undefined;
  /** Whether a signed token gave the name: it cannot be changed then. */
  readonly verified: boolean;
  /** What the user may do beyond chatting, from their signed token or `!op`. */
  readonly roles: Set<Role>;
  /** When the user's signed token expires (milliseconds since the Unix epoch), if it does... */
  expiresAt: number | undefined;
  /** ...and whether they were told it soon will. */
  expiryWarned = false;
  /** Whether the user was told they flood, since their bucket was last full. */
  floodWarned = false;
  /** Renames left to the user, made at their first rename. */
  renames: TokenBucket | undefined;
  /** Token mode: the newest message of the inbox a live device of the session was sent. */
  inboxSeen: SeenPosition | undefined;
  /** Where the session stopped reading each room, as its devices said. */
  readonly read: ReadPositions = new ReadPositions();
  /** When the user last told a room (by key) that they were typing. */
  typing: { readonly room: string; readonly at: number } | undefined;
  /** The room the user is in, or is entering. */
  room: Room<User>;
  /** Set once the session is welcomed: its name is agreed and its room followed. */
  started = false;
  /**
   * While a request waits for the other instances (a name claim, a room to
   * follow), the user's later requests, in order; `undefined` otherwise.
   */
  waiting: Asked[] | undefined;
  /** What `waiting` waits for; a newer step takes the queue over. */
  step: object | undefined;
  #name: string;
  #sink: Sink;
  /** The place the session keeps in the server's limits while it lingers. */
  #place: Place | undefined;

  constructor(id: number, name: string, options: UserOptions) {
    this.id = id;
    this.#name = name;
    this.#sink = options.sink;
    this.flood = options.flood;
    this.room = options.room;
    this.resumable = options.resumable;
    this.address = options.address;
    this.addressKey = options.address === undefined ? undefined : addressKey(options.address);
    this.verified = options.identity !== undefined;
    this.roles = new Set(options.identity?.roles);
    this.expiresAt = options.identity?.expiresAt;
  }

  /** Takes what a fresher signed token says: its roles and its expiry. */
  renew(identity: Identity): void {
    this.roles.clear();
    for (const role of identity.roles) this.roles.add(role);
    if (identity.expiresAt !== this.expiresAt) this.expiryWarned = false;
    this.expiresAt = identity.expiresAt;
  }

  /** The name others see; changed only through the chatroom so its index stays true. */
  get name(): string {
    return this.#name;
  }

  /**
   * Where this user's events go: their connection, their {@linkcode Devices},
   * or a {@linkcode LingeringSink}.
   */
  get sink(): Sink {
    return this.#sink;
  }

  /** The live connections of the session, oldest first: none while it lingers. */
  get devices(): readonly Sink[] {
    const sink = this.#sink;
    if (sink instanceof Devices) return sink.list;
    return sink instanceof LingeringSink ? [] : [sink];
  }

  /** The kept events of a dropped session, while it lingers. */
  get lingering(): LingeringSink | undefined {
    return this.#sink instanceof LingeringSink ? this.#sink : undefined;
  }

  /** @internal Called by the chatroom, which keeps the name index. */
  rename(name: string): void {
    this.#name = name;
  }

  /**
   * @internal Called by the chatroom when the session moves to another
   * sink: a lingering session's place is given back, the new socket has one.
   */
  attach(sink: Sink): void {
    this.#sink = sink;
    this.#place?.release();
    this.#place = undefined;
  }

  /**
   * @internal Called by the sessions when the account signs in on another
   * device: it is added to the live ones, and the oldest are dropped to keep
   * at most `max`. Returns the dropped ones, for the caller to close.
   */
  addDevice(device: Sink, max: number): readonly Sink[] {
    const live = this.devices;
    const dropped = live.slice(0, Math.max(0, live.length + 1 - max));
    const kept = [...live.slice(dropped.length), device];
    this.attach(kept.length === 1 ? device : new Devices(kept));
    return dropped;
  }

  /**
   * @internal Called by the sessions when one of several devices closes;
   * `false` when `device` is not one of several (the session's last, or none).
   */
  dropDevice(device: Sink): boolean {
    const sink = this.#sink;
    if (!(sink instanceof Devices) || !sink.list.includes(device)) return false;
    const kept = sink.list.filter((live) => live !== device);
    this.#sink = kept.length === 1 ? kept[0] : new Devices(kept);
    return true;
  }

  /** @internal Called by the chatroom when the session lingers, keeping its socket's place. */
  keep(place: Place): void {
    this.#place?.release();
    this.#place = place;
  }

  /** @internal Called by the user directory when the session ends: its place is given back. */
  leave(): void {
    this.#place?.release();
    this.#place = undefined;
  }
}
