/**
 * The first events of a session: a fresh one (its welcome, why the name or
 * room asked for could not be had, the room's members, topic and backlog)
 * or one picked up again (what it missed, and the private messages kept
 * for it while it lingered).
 *
 * @module
 */

import { rank } from "../auth/tokens.ts";
import { getLogger } from "@logtape/logtape";
import { sameName, shownName } from "../text/names.ts";
import type { PrivateEvent, SessionStart, Sink } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";
import type { Inboxes } from "./inboxes.ts";
import type { Membership, OpenRefusal } from "./membership.ts";
import type { Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "session"]);

/** What {@linkcode Welcomes} works with, shared with the sessions. */
export interface WelcomesOptions {
  readonly events: EventFactory;
  readonly membership: Membership;
  readonly rooms: RoomDirectory<User>;
  /**
   * Called once a welcomed user is in their room, before its backlog (for
   * its topic), with the one device to tell when only it is welcomed (`to`).
   */
  readonly entered: (user: User, room: Room<User>, to?: Sink) => void;
  readonly inboxes: Inboxes;
}

/** How sessions begin, as their users see it. */
export class Welcomes {
  readonly #options: WelcomesOptions;
  /** Why the room asked for at the start could not be entered, told after the welcome. */
  readonly #roomRefusals = new WeakMap<User, OpenRefusal>();

  constructor(options: WelcomesOptions) {
    this.#options = options;
  }

  /** Remembers why `user` could not start in the room they asked for, to tell them. */
  roomRefused(user: User, refusal: OpenRefusal): void {
    this.#roomRefusals.set(user, refusal);
  }

  /** The first events of a session, once its name is agreed and its room followed. */
  welcome(user: User, start: SessionStart, refusal: string | undefined): void {
    const { events, membership, rooms } = this.#options;
    const room = user.room;
    user.started = true;
    log.info("User {id} connected as {name}", { id: user.id, name: user.name });
    user.sink.send(
      events.welcome({ name: user.name, token: user.token, room, rank: rank(user.roles) }),
    );
    if (start.name !== undefined && refusal !== undefined) {
      user.sink.send(events.error("name_refused", "name_unavailable", {
        requested: shownName(start.name),
        reason: refusal,
        name: user.name,
      }));
    }
    const roomRefusal = this.#roomRefusals.get(user);
    if (roomRefusal !== undefined && start.room !== undefined) {
      this.#roomRefusals.delete(user);
      user.sink.send(
        roomRefusal === "room_invalid"
          ? events.error("room_invalid", "room_invalid", {
            room: shownName(start.room),
          })
          : events.error("room_limit", roomRefusal, {}),
      );
    }
    if (room !== rooms.lobby) user.sink.send(membership.members(user, room, true));
    this.#options.entered(user, room);
    const seen = start.room !== undefined && sameName(start.room, room.name) &&
        start.lastSeq !== undefined
      ? { epoch: start.epoch, seq: start.lastSeq }
      : undefined;
    membership.sendBacklog(user, room, seen);
    this.#options.inboxes.backlog(user, start.privates);
    membership.enter(user, room, "connected");
  }

  /**
   * The first events of a session picked up again, or of another device of
   * its account (`to`): its welcome and room, what it missed there since
   * `start`'s position, and its private messages.
   */
  resumed(
    user: User,
    start: SessionStart,
    privates: readonly PrivateEvent[],
    dropped: number,
    to: Sink = user.sink,
  ): void {
    const { events, membership } = this.#options;
    const room: Room<User> = user.room;
    to.send(events.welcome({ name: user.name, token: user.token, room, rank: rank(user.roles) }));
    to.send(membership.members(user, room, true));
    this.#options.entered(user, room, to);
    const sameRoom = start.room !== undefined && sameName(start.room, room.name);
    membership.sendBacklog(
      user,
      room,
      sameRoom ? { epoch: start.epoch, seq: start.lastSeq ?? 0 } : { seq: 0 },
      to,
    );
    for (const event of privates) to.send(event);
    if (dropped > 0) to.send(events.system("privates_dropped", { count: String(dropped) }));
    this.#options.inboxes.backlog(user, start.privates, to);
  }
}
