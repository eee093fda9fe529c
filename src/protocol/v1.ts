/**
 * The original wire format: clients send plain text frames; the server sends
 * each event as one JSON text frame `{"body", "origin", "sentAt"}`.
 *
 * @module
 */

import { isoTime } from "./time.ts";
import type { ChatEvent } from "../events.ts";

/**
 * The last event encoded and its frame: a broadcast hands the same event to
 * every recipient in a row, so it is serialized once, not per recipient.
 */
let lastEvent: ChatEvent | undefined;
let lastFrame = "";

/** The JSON text frame for `event`. */
export function encodeTextFrame(event: ChatEvent): string {
  if (event !== lastEvent) {
    lastFrame = JSON.stringify({
      body: event.body,
      origin: event.origin,
      sentAt: isoTime(event.sentAt),
    });
    lastEvent = event;
  }
  return lastFrame;
}
