/**
 * Token mode: one account signed in on several devices. The session is one
 * {@linkcode User}; its events go to every live connection of the account,
 * and past `auth.max_devices` the oldest is told why and closed.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Identity, rank } from "../auth/tokens.ts";
import type { Metrics } from "../metrics.ts";
import type { Sink } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "session"]);

/**
 * Token mode: the live connections of one account signed in on several
 * devices. Each is sent all the account's events; the list never changes
 * in place, so a send goes to the devices there were when it began.
 */
export class Devices implements Sink {
  /** Oldest first. */
  readonly list: readonly Sink[];

  constructor(list: readonly Sink[]) {
    this.list = list;
  }

  send(event: Parameters<Sink["send"]>[0], own?: boolean): void {
    for (const device of this.list) device.send(event, own);
  }

  close(reason: Parameters<Sink["close"]>[0]): void {
    for (const device of this.list) device.close(reason);
  }
}

/**
 * The account holding `user`'s session signed in again, with `identity`.
 * Its devices share one sign-in, and the newest token says what it is, as
 * a refresh does: its roles (every device is told of a change) and its
 * expiry. Keeping an older token's later expiry would let a short-lived
 * token's roles outlive it.
 */
export function signedInAgain(user: User, identity: Identity, events: EventFactory): void {
  const before = rank(user.roles);
  user.renew(identity);
  const now = rank(user.roles);
  if (now !== before) user.sink.send({ ...events.system("refreshed", {}), rank: now });
}

/** What {@linkcode addDevice} works with. */
export interface DevicesOptions {
  readonly events: EventFactory;
  readonly metrics: Metrics;
  /** Connections one account may have open at once. */
  readonly maxDevices: number;
}

/** Adds `device` to the live ones of `user`'s session, closing the oldest past the limit. */
export function addDevice(user: User, device: Sink, options: DevicesOptions): void {
  const { events, metrics, maxDevices } = options;
  for (const oldest of user.addDevice(device, maxDevices)) {
    oldest.send(events.error("too_many_devices", "too_many_devices", { max: String(maxDevices) }));
    oldest.close("too_many_devices");
    metrics.connectionsClosed.inc("too_many_devices");
  }
  metrics.devicesAdded.inc();
  log.info("User {id} ({name}) signed in on another device, now {count}", {
    id: user.id,
    name: user.name,
    count: user.devices.length,
  });
}
