/**
 * Token mode, in a cluster: one account's devices on different instances.
 * A session lives on one instance; a device signing in through another
 * while the session is live is relayed to it (see `broker/nats/relay.ts`).
 * There the device is a {@linkcode Connection} like any other, over a socket
 * whose frames cross NATS, so every rule of a connection holds for it.
 *
 * @module
 */

import { TokenError, type TokenVerifier } from "../auth/tokens.ts";
import {
  type Cluster,
  type DeviceEnd,
  type DeviceLink,
  type DeviceOpening,
  MAX_OPENING_ROOM,
  type Relay,
} from "../broker/types.ts";
import type { Chatroom } from "../chat/mod.ts";
import { Connection, type ConnectionOptions, type SocketLike } from "./connection.ts";

/** Where the devices of accounts whose sessions are elsewhere go. */
export interface DeviceRelay {
  /**
   * Relays a device of `name` to the instance holding that account's live
   * session: the link once it took the device, `not_live` when no other
   * instance holds the session live (at once when none holds the name), or
   * `unavailable` when the one holding it did not take it.
   */
  join(
    name: string,
    opening: Omit<DeviceOpening, "name">,
    end: DeviceEnd,
  ): Promise<DeviceLink | "not_live" | "unavailable"> | "not_live";
}

/** The device's side: asks the instance holding exactly `name`, if another one does. */
export function deviceRelay(cluster: Cluster): DeviceRelay {
  return {
    join(name, opening, end) {
      const holder = cluster.names.find(name);
      // A look-alike's holder is not this account's: the gate refuses it here.
      if (holder === undefined || holder.name !== name) return "not_live";
      const room = opening.room?.slice(0, MAX_OPENING_ROOM);
      return cluster.relay.open(holder.instance, { ...opening, room, name }, end);
    },
  };
}

/** A relayed device's socket, as its session's instance sees it. */
class RelayedSocket implements SocketLike {
  readonly #link: DeviceLink;
  readonly #closed: () => void;
  /** The device's instance watches the real socket's buffer (and cuts a slow one off). */
  readonly bufferedAmount = 0;

  /** `closed` is called once closing is done, as a socket's close event would be. */
  constructor(link: DeviceLink, closed: () => void) {
    this.#link = link;
    this.#closed = closed;
  }

  send(data: string): void {
    this.#link.send(data);
  }

  close(code = 1000, reason = ""): void {
    this.#link.close(code, reason);
    queueMicrotask(this.#closed);
  }
}

/**
 * The session's side: takes a device of an account whose session here is
 * live (started, not lingering) and runs it as a connection of its own.
 * The device's token is checked here again: in its first frame, as for any
 * socket, or the upgrade's `?token=`.
 */
export function serveRelayedDevices(
  relay: Relay,
  chatroom: Chatroom,
  options: Pick<ConnectionOptions, "limits" | "metrics" | "outbox"> & {
    readonly verifier: TokenVerifier;
  },
): void {
  relay.serve(async (opening, link) => {
    // Only a token of this account signs this device in (a hello or resume may hold any).
    const verifier: TokenVerifier = {
      async verify(token) {
        const identity = await options.verifier.verify(token);
        if (identity.name !== opening.name) {
          throw new TokenError("the token names another account than this device's");
        }
        return identity;
      },
    };
    const live = () => {
      const user = chatroom.findUser(opening.name);
      return user !== undefined && user.name === opening.name && user.started &&
        user.lingering === undefined;
    };
    if (!live()) return undefined;
    // A text client shows its token in the upgrade; without one there is no account to join.
    if (opening.protocol === "v1" && opening.token === undefined) {
      throw new Error("a text client's opening has no token");
    }
    const identity = opening.token === undefined ? undefined : await verifier.verify(opening.token);
    if (!live()) return undefined;
    const socket = new RelayedSocket(link, () => connection.closed());
    const connection: Connection = new Connection(socket, chatroom, {
      ...options,
      verifier,
      protocol: opening.protocol,
      room: opening.room,
      address: opening.address,
      identity,
    });
    connection.opened();
    return {
      frame: (data) => connection.received(data),
      ended: () => connection.closed(),
    };
  });
}
