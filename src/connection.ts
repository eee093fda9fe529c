/**
 * The boundary between a WebSocket and the chat: frames in become
 * {@linkcode Chatroom} calls, events out become frames.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Chatroom } from "./chatroom.ts";
import { encodeTextFrame } from "./protocol/text.ts";
import type { ChatEvent, Sink, User } from "./user.ts";

/** The part of a WebSocket the chat uses, so tests can pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;
const CLOSING = 2;

const log = getLogger(["chat", "connection"]);

/**
 * A {@linkcode Sink} over a socket. Sending never waits for the peer: the
 * socket buffers, so one slow client cannot hold up a broadcast.
 */
export class Connection implements Sink {
  readonly #socket: SocketLike;

  constructor(socket: SocketLike) {
    this.#socket = socket;
  }

  send(event: ChatEvent): void {
    if (this.#socket.readyState === OPEN) this.#socket.send(encodeTextFrame(event));
  }

  close(code: number, reason: string): void {
    if (this.#socket.readyState < CLOSING) this.#socket.close(code, reason);
  }
}

/** Options of {@linkcode serveChatSocket}. */
export interface ServeChatSocketOptions {
  /** The name asked for in the upgrade request (`?name=`). */
  name?: string;
}

/** Joins a freshly upgraded socket to the chat for as long as it stays open. */
export function serveChatSocket(
  socket: WebSocket,
  chatroom: Chatroom,
  options: ServeChatSocketOptions = {},
): void {
  const connection = new Connection(socket);
  let user: User | undefined;
  socket.addEventListener("open", () => {
    user = chatroom.connect(connection, { name: options.name });
  });
  socket.addEventListener("message", (event) => {
    if (user !== undefined && typeof event.data === "string") chatroom.receive(user, event.data);
  });
  socket.addEventListener("close", (event) => {
    if (user === undefined) return;
    log.debug("Socket of user {id} closed with {code}", { id: user.id, code: event.code });
    chatroom.disconnect(user);
  });
}
