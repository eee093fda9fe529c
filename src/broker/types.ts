/**
 * What travels between instances of the chat. The chatroom hands every room
 * event and private message to a {@linkcode Broker} and acts on what the broker
 * delivers back, so one process alone (the local broker) and several joined
 * through NATS run the same code. The broker owns each room's log: it numbers
 * messages, keeps the log's epoch and stores the log before it delivers.
 * Everything here is plain JSON-friendly data.
 *
 * @module
 */

/** Who did something: the instance, the user's id there, and the name they had. */
export interface Author {
  readonly instance: string;
  readonly userId: number;
  readonly name: string;
}

/** Something said in a room. */
export interface MessageNote {
  readonly kind: "message";
  readonly room: string;
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly sentAt: number;
  readonly author: Author;
  readonly text: string;
  readonly emote: boolean;
}

/** Someone arrived in, left or was renamed in a room. */
export interface PresenceNote {
  readonly kind: "presence";
  readonly room: string;
  readonly id: string;
  readonly sentAt: number;
  /** The user concerned, with their (new) name. */
  readonly author: Author;
  readonly action: "join" | "leave" | "rename";
  /** Which notice to show: a session starting or ending, a move between rooms, a rename. */
  readonly notice: "connected" | "disconnected" | "joined" | "left" | "renamed";
  readonly oldName?: string;
}

/** A room event, delivered to every instance in one order per room. */
export type RoomNote = MessageNote | PresenceNote;

/**
 * Where a message stands in its room's log. Within one epoch, seqs only
 * grow and every message numbered is kept (until the oldest fall out of the
 * history); a new epoch means the numbering started again or the log may
 * have lost messages, so a client's position from another epoch says nothing.
 */
export interface LogPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** A private message on its way to the instance of its target. */
export interface PrivateNote {
  readonly id: string;
  readonly sentAt: number;
  readonly from: string;
  readonly to: string;
  readonly text: string;
}

/** A user connected to another instance. */
export interface RemoteUser {
  readonly name: string;
  readonly room: string;
  readonly instance: string;
}

/** What the chatroom does with what the broker delivers. */
export interface BrokerHandler {
  /** A room event; a message comes with its place in the room's log. */
  deliverRoomNote(note: RoomNote, position?: LogPosition): void;
  /** A private message for a local user. */
  deliverPrivate(note: PrivateNote): void;
  /** A local user's name turned out to be held elsewhere. */
  nameLost(name: string): void;
  /** The link to the other instances was lost (`true`) or is back (`false`). */
  setDegraded(degraded: boolean): void;
  /** Room history stopped being saved (`false`), or is saved again (`true`). */
  setHistorySaved(saved: boolean): void;
}

/** The link between the chatroom and the other instances, if any. */
export interface Broker {
  /** This instance's id, different at every start, so event ids never repeat. */
  readonly instance: string;
  /** Sets who receives deliveries; called once by the chatroom. */
  attach(handler: BrokerHandler): void;
  /** The epoch of a room's log, started now when the room has none yet. */
  epochOf(room: string): string;
  /**
   * Sends a room event to every instance, this one included. Messages are
   * numbered and stored first. Returns false when it cannot even be queued
   * (the cluster is away and the queue is full).
   */
  publishRoomNote(note: RoomNote): boolean;
  /** Sends a private message to the instance where `to` is connected. */
  publishPrivate(note: PrivateNote, to: RemoteUser): void;
  /** The user of another instance holding this name key, if any. */
  findRemote(key: string): RemoteUser | undefined;
  /** Every user of the other instances. */
  remoteUsers(): Iterable<RemoteUser>;
  /** The users of the other instances who are in `room`. */
  remoteMembers(room: string): Iterable<RemoteUser>;
  /** Records that a local user holds `name` and is in `room`. */
  announce(name: string, room: string, userId: number): void;
  /** Gives up a name a local user held. */
  withdraw(name: string): void;
  /** Forgets a room's log after the room was removed; a room of that name later starts a new one. */
  roomRemoved(room: string): void;
  /** Stops once what was published is stored, releasing what this instance holds. */
  close(): Promise<void>;
}

/** A new random id of 8 hex digits, for instances and epochs. */
export function randomId(): string {
  return crypto.randomUUID().slice(0, 8);
}
