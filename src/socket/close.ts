/**
 * The WebSocket close codes the server sends, and the reason sent with each
 * close the chat asks for.
 *
 * @module
 */

import type { CloseReason } from "../vocabulary/events.ts";

/** WebSocket close codes the server sends. */
export const CLOSE_CODES = {
  /** The server is stopping ("going away"). */
  shutdown: 1001,
  /** The client broke a rule: here, it kept flooding. */
  flood: 1008,
  /** A frame over `max_frame_bytes`. */
  frameTooLarge: 1009,
  /** A client that cannot keep up ("try again later")... */
  slowConsumer: 1013,
  /** ...or a session that cannot start now but may shortly. */
  retry: 1013,
  /** The session was resumed on another connection... */
  replaced: 4000,
  /** ...or the account signed in on one device too many, and this was its oldest. */
  too_many_devices: 4000,
  /** Token mode: no valid signed token, or it expired. */
  unauthorized: 4001,
  /** A moderator removed the user (a kick or a ban). */
  removed: 4003,
} as const;

/** The reason sent with each close the chat asks for. */
export const CLOSE_REASONS: Readonly<Record<CloseReason, string>> = {
  shutdown: "server shutting down",
  flood: "flooding",
  replaced: "session resumed elsewhere",
  retry: "try again in a few seconds",
  too_many_devices: "signed in on too many devices",
  unauthorized: "sign-in token missing, refused or expired",
  removed: "removed by a moderator",
};
