/**
 * The requests of moderation, as the request table declares them: `op`, and
 * the moderators' requests (the table says who may make them; ranks are
 * checked by {@linkcode Moderation}, against where the target is).
 *
 * @module
 */

import { rank } from "../auth/tokens.ts";
import { getLogger } from "@logtape/logtape";
import type { Settled } from "../broker/types.ts";
import type { Metrics } from "../metrics.ts";
import { Guesses, type GuessPolicy } from "../auth/guesses.ts";
import { sameSecret } from "../auth/secrets.ts";
import type { RequestOf } from "../vocabulary/requests.ts";
import type { EventFactory } from "./event_factory.ts";
import type { Moderation } from "./moderation.ts";
import { type Actor, DONE, type Outcome, settle } from "./outcome.ts";
import { ADDRESS_PREFIX, NAME_PREFIX } from "./targets.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "moderation"]);

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * Wrong operator passwords one session may try before it waits: 5 s after
 * the fifth, doubling with each further one up to 15 minutes; forgotten
 * after an hour without one.
 */
const SESSION_GUESSES: GuessPolicy = {
  free: 5,
  firstWait: 5 * SECOND,
  maxWait: 15 * MINUTE,
  forgetAfter: 60 * MINUTE,
};

/**
 * ...and all the sessions of one address (an IPv6 /64): only past 50 are
 * the sessions there held back that guessed nothing wrong themselves.
 */
const ADDRESS_GUESSES: GuessPolicy = { ...SESSION_GUESSES, free: 50 };

/** What {@linkcode ModeratorCommands} works with, shared with the chatroom. */
export interface ModeratorCommandsOptions {
  readonly now: () => number;
  readonly events: EventFactory;
  readonly metrics: Metrics;
  readonly moderation: Moderation;
  /** Open mode's operator password; `undefined` when `!op` makes nobody a moderator. */
  readonly operatorPassword: string | undefined;
  /** A user became a moderator: the other instances learn their rank. */
  readonly promoted: (user: User) => void;
  /** Removes the newest `count` kept messages said under `name`; says how many went. */
  readonly removeLast: (actor: Actor, name: string, count: number) => number;
}

/** The moderation requests of one server. */
export class ModeratorCommands {
  readonly #options: ModeratorCommandsOptions;
  /** Wrong operator passwords, by session... */
  readonly #sessionGuesses = new Guesses(SESSION_GUESSES);
  /** ...and by address. */
  readonly #addressGuesses = new Guesses(ADDRESS_GUESSES);

  constructor(options: ModeratorCommandsOptions) {
    this.#options = options;
  }

  kick(actor: Actor, request: RequestOf<"kick">): Settled<Outcome> {
    return this.#options.moderation.kick(actor, request.user, request.reason ?? "");
  }

  mute(actor: Actor, request: RequestOf<"mute">): Settled<Outcome> {
    const { user: target, seconds, reason = "" } = request;
    return this.#options.moderation.hold(actor, { kind: "mute", target, seconds, reason });
  }

  unmute(actor: Actor, request: RequestOf<"unmute">): Settled<Outcome> {
    return this.#options.moderation.lift(actor, "mute", request.user);
  }

  /**
   * Bans a user, a name or an address; with `delete` (v2 and the server
   * API), also removes the newest that many messages said under the name
   * or a look-alike (an address's ban removes none: messages carry names).
   */
  ban(actor: Actor, request: RequestOf<"ban">): Settled<Outcome> {
    const { target, seconds, reason = "", delete: count } = request;
    const banned = this.#options.moderation.hold(actor, { kind: "ban", target, seconds, reason });
    if (count === undefined || target.startsWith(ADDRESS_PREFIX)) return banned;
    return settle(banned, (outcome): Outcome => {
      if (!outcome.ok) return outcome;
      const name = target.startsWith(NAME_PREFIX) ? target.slice(NAME_PREFIX.length) : target;
      const removed = this.#options.removeLast(actor, name, count);
      const done = `${outcome.done ?? ""}; ${removed} of their messages removed`;
      return { ...outcome, done };
    });
  }

  unban(actor: Actor, request: RequestOf<"unban">): Settled<Outcome> {
    return this.#options.moderation.lift(actor, "ban", request.target);
  }

  /** Shows the room's topic, or (moderators) sets it; everyone in the room hears the change. */
  topic(actor: Actor, request: RequestOf<"topic">): Settled<Outcome> {
    const { events, moderation } = this.#options;
    const room = actor.room;
    if (request.text !== undefined) {
      return quietly(moderation.setRoom(actor, room, { topic: request.text }));
    }
    const user = actor.user;
    if (user === undefined) return DONE;
    const topic = moderation.settings.topicOf(room);
    actor.reply?.send(
      topic === undefined
        ? events.system("no_topic", { room }, user.room)
        : events.system("topic", { room, topic }, user.room),
    );
    return DONE;
  }

  /** Sets slow mode in the room; everyone in it hears the change. */
  slow(actor: Actor, request: RequestOf<"slow">): Settled<Outcome> {
    return quietly(this.#options.moderation.setRoom(actor, actor.room, { slow: request.seconds }));
  }

  /**
   * Open mode: the operator password makes a moderator. A session that
   * guessed wrong too often, or whose address did, waits before its next
   * guess is even compared.
   */
  op(user: User, request: RequestOf<"op">): Outcome {
    const { events, operatorPassword, metrics } = this.#options;
    const fail = (key: "op_unavailable" | "op_refused"): Outcome => ({
      ok: false,
      error: events.error("forbidden", key, {}),
    });
    if (operatorPassword === undefined) return fail("op_unavailable");
    const now = this.#options.now();
    const session = String(user.id);
    const address = user.addressKey;
    const wait = Math.max(
      this.#sessionGuesses.wait(session, now),
      address === undefined ? 0 : this.#addressGuesses.wait(address, now),
    );
    if (wait > 0) {
      metrics.moderationRefused.inc();
      const seconds = String(Math.ceil(wait / SECOND));
      return { ok: false, error: events.error("forbidden", "op_wait", { seconds }) };
    }
    if (!sameSecret(request.password, operatorPassword)) {
      this.#sessionGuesses.wrong(session, now);
      if (address !== undefined) this.#addressGuesses.wrong(address, now);
      metrics.moderationRefused.inc();
      log.warning("Wrong operator password from user {id} ({name}, address {address})", {
        id: user.id,
        name: user.name,
        address: user.address,
      });
      return fail("op_refused");
    }
    this.#sessionGuesses.forget(session);
    user.roles.add("moderator");
    log.info("User {id} ({name}) is a moderator now", { id: user.id, name: user.name });
    this.#options.promoted(user);
    user.sink.send({ ...events.system("op_granted", {}), rank: rank(user.roles) });
    return DONE;
  }

  /** Forgets the wrong passwords of sessions and addresses quiet long enough. */
  sweep(): void {
    const now = this.#options.now();
    this.#sessionGuesses.sweep(now);
    this.#addressGuesses.sweep(now);
  }
}

/** A room's new settings are told to everyone in it, the moderator included: no "Done". */
function quietly(outcome: Settled<Outcome>): Settled<Outcome> {
  const strip = (result: Outcome): Outcome => result.ok ? DONE : result;
  return outcome instanceof Promise ? outcome.then(strip) : strip(outcome);
}
