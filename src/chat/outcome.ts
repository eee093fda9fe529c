/**
 * Who makes a request and what comes of it, the same on every road: a user's
 * session (text or v2), or the server API acting as a moderator or as a bot.
 * Each road shows an {@linkcode Outcome} its own way: an event to the user,
 * or an HTTP status and JSON.
 *
 * @module
 */

import type { Settled } from "../broker/types.ts";
import type { ErrorEvent, Sink } from "../vocabulary/events.ts";
import type { User } from "./user.ts";

/** Who makes a request. */
export interface Actor {
  /** The name others see, and moderation logs. */
  readonly name: string;
  /** 0 for users, 1 for moderators, 2 for admins, 3 for the server API. */
  readonly rank: number;
  /** The session making it; the server API and its bots have none. */
  readonly user?: User;
  /** The room a message goes to: the user's, or the one an API call names. */
  readonly room: string;
  /**
   * Where answers for the asker alone go: the device of the session that
   * asked (in token mode an account may have several); none for the API.
   */
  readonly reply?: Sink;
}

/** The server API, as a moderator: above admins, so it may act on anyone. */
export const API_RANK = 3;

/** What came of a request. */
export type Outcome =
  /** Done: `done` says what, in words (moderation); `id` names the message sent. */
  | { readonly ok: true; readonly done?: string; readonly id?: string }
  /**
   * Not done, and why. A `quiet` refusal (a blank message) is counted but
   * not answered to users; the server API answers it like any other.
   */
  | { readonly ok: false; readonly error: ErrorEvent; readonly quiet?: boolean };

/** Done, with nothing more to say. */
export const DONE: Outcome = { ok: true };

/** Applies `then` to a result now when it is ready, else once it is. */
export function settle<T, R>(settled: Settled<T>, then: (value: T) => Settled<R>): Settled<R> {
  return settled instanceof Promise ? settled.then(then) : then(settled);
}
