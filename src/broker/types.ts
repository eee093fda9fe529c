/**
 * What travels between instances of the chat. The chatroom hands every room
 * event and private message to a {@linkcode Broker} and acts on what the broker
 * delivers back, so one process alone (the local broker) and several joined
 * through NATS run the same code. Everything here is plain JSON-friendly data.
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
  /** A room event, numbered: `seq` is set when the broker numbers messages itself. */
  deliverRoomNote(note: RoomNote, seq?: number): void;
  /** A private message for a local user. */
  deliverPrivate(note: PrivateNote): void;
  /** A local user's name turned out to be held elsewhere. */
  nameLost(name: string): void;
  /** The link to the other instances was lost (`true`) or is back (`false`). */
  setDegraded(degraded: boolean): void;
}

/** The link between the chatroom and the other instances, if any. */
export interface Broker {
  /** This instance's id; "" when running alone. */
  readonly instance: string;
  /** Sets who receives deliveries; called once by the chatroom. */
  attach(handler: BrokerHandler): void;
  /**
   * Sends a room event to every instance, this one included. Returns false
   * when it cannot even be queued (the cluster is away and the queue is full).
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
  /** Forgets a room's stored history after the room was removed. */
  roomRemoved(room: string): void;
  /** Stops, releasing what this instance holds. */
  close(): Promise<void>;
}
