/**
 * Moderation as people in the chat ask for it: `!op` (and its v2 request),
 * and the moderators' commands, checked for rank 0 here, done by
 * {@linkcode Moderation}, and answered to the moderator.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { rank } from "../auth/tokens.ts";
import type { Settled } from "../broker/types.ts";
import type { Metrics } from "../metrics.ts";
import { sameSecret } from "../auth/secrets.ts";
import { type EventFactory, NO_REASON } from "./event_factory.ts";
import type { ClientRequest } from "../vocabulary/events.ts";
import { Buckets, Limiter, type Rate } from "../limits.ts";
import { MAX_SLOW_SECONDS, type Moderation, type Moderator, type Outcome } from "./moderation.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "moderation"]);

/** Wrong operator passwords one address may try at once, and how fast it earns tries back. */
const OP_TRIES: Rate = { rate: 1 / 60, burst: 5 };

/** The requests only moderators may make (and `op`, which makes one). */
export type ModerationRequest = Extract<
  ClientRequest,
  { type: "op" | "kick" | "mute" | "unmute" | "ban" | "unban" | "topic" | "slow" }
>;

/** What {@linkcode ModeratorCommands} works with, shared with the chatroom. */
export interface ModeratorCommandsOptions {
  readonly now: () => number;
  readonly events: EventFactory;
  readonly metrics: Metrics;
  readonly moderation: Moderation;
  /** Open mode's operator password; `undefined` when `!op` makes nobody a moderator. */
  readonly operatorPassword: string | undefined;
  /** Runs `then` once `settled` is, the user's later requests waiting meanwhile. */
  readonly after: <T>(user: User, settled: Settled<T>, then: (value: T) => void) => void;
}

/** The moderators' commands of one server. */
export class ModeratorCommands {
  readonly #options: ModeratorCommandsOptions;
  /** Wrong operator passwords left to try, by address (or user). */
  readonly #opTries = new Buckets((now) => new Limiter(OP_TRIES, now));

  constructor(options: ModeratorCommandsOptions) {
    this.#options = options;
  }

  /**
   * Handles a moderation request of a user: checks that they may, acts,
   * and answers them. Non-moderators are told no, and nothing happens.
   */
  handle(user: User, request: ModerationRequest): void {
    const { events, moderation } = this.#options;
    if (request.type === "op") return this.#op(user, request.password);
    if (request.type === "topic" && request.text === undefined) {
      const topic = moderation.topicOf(user.room.name);
      const room = user.room.name;
      return user.sink.send(
        topic === undefined
          ? events.system("no_topic", { room }, room)
          : events.system("topic", { room, topic }, room),
      );
    }
    const actor: Moderator = { name: user.name, rank: rank(user.roles) };
    if (actor.rank === 0) {
      this.#options.metrics.moderationRefused.inc();
      log.info("Refused !{command} to user {id} ({name}): not a moderator", {
        command: request.type,
        id: user.id,
        name: user.name,
      });
      return user.sink.send(events.error("forbidden", "forbidden", { command: request.type }));
    }
    const reason = "reason" in request && request.reason !== undefined && request.reason !== ""
      ? request.reason
      : NO_REASON;
    let outcome: Settled<Outcome>;
    switch (request.type) {
      case "kick":
        outcome = moderation.kick(actor, request.user, reason);
        break;
      case "mute":
        outcome = moderation.mute(actor, request.user, request.seconds, reason);
        break;
      case "unmute":
        outcome = moderation.unmute(actor, request.user);
        break;
      case "ban":
        outcome = moderation.ban(actor, request.target, request.seconds, reason);
        break;
      case "unban":
        outcome = moderation.unban(actor, request.target);
        break;
      case "topic":
        outcome = moderation.setRoom(actor, user.room.name, { topic: request.text ?? "" });
        break;
      case "slow":
        outcome = moderation.setRoom(actor, user.room.name, {
          slow: Math.min(request.seconds, MAX_SLOW_SECONDS),
        });
        break;
    }
    const target = "user" in request ? request.user : "target" in request ? request.target : "";
    // A room's new settings are told to everyone in it, the moderator included.
    const quiet = request.type === "topic" || request.type === "slow";
    this.#options.after(user, outcome, (result) => {
      if (!result.ok || !quiet) this.#answer(user, result, target);
    });
  }

  #answer(user: User, outcome: Outcome, target: string): void {
    const { events } = this.#options;
    if (outcome.ok) return user.sink.send(events.system("done", { what: outcome.what }));
    switch (outcome.problem) {
      case "not_found":
        return user.sink.send(events.error("user_not_found", "user_not_found", { name: target }));
      case "outranked":
        return user.sink.send(events.error("forbidden", "outranked", { name: target }));
      case "invalid":
        return user.sink.send(
          events.error("bad_request", "bad_request", {
            reason: `"${target}" is neither a valid name nor an address`,
          }),
        );
      case "not_saved":
        return user.sink.send(events.error("unavailable", "not_saved", {}));
    }
  }

  /** Open mode: the operator password makes a moderator. */
  #op(user: User, password: string): void {
    const { events, operatorPassword, metrics } = this.#options;
    if (operatorPassword === undefined || user.verified) {
      return user.sink.send(events.error("forbidden", "op_unavailable", {}));
    }
    const now = this.#options.now();
    const tries = this.#opTries.get(user.address ?? `user:${user.id}`, now);
    if (!tries.available(now)) {
      metrics.moderationRefused.inc();
      return user.sink.send(events.error("forbidden", "op_wait", {}));
    }
    if (!sameSecret(password, operatorPassword)) {
      tries.take(now);
      metrics.moderationRefused.inc();
      log.warning("Wrong operator password from user {id} ({name}, address {address})", {
        id: user.id,
        name: user.name,
        address: user.address,
      });
      return user.sink.send(events.error("forbidden", "op_refused", {}));
    }
    user.roles.add("moderator");
    log.info("User {id} ({name}) is a moderator now", { id: user.id, name: user.name });
    user.sink.send(events.system("op_granted", {}));
  }
}
