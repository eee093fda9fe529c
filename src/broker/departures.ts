/**
 * The end of a session, as a room is told of it: said by the session's own
 * instance, or, when that instance is gone or cut off, by every survivor.
 * All say it under one id, so each room shows it once.
 *
 * @module
 */

import type { PresenceNote } from "./types.ts";

/** The id of the end of session `userId` of `instance`, the same wherever it is said. */
export function departureId(instance: string, userId: number): string {
  return `${instance}.gone.${userId}`;
}

/** Whether a presence note ends its session (a leave that is not a move between rooms). */
export function isDeparture(note: Pick<PresenceNote, "action" | "notice">): boolean {
  return note.action === "leave" && note.notice !== "left";
}
