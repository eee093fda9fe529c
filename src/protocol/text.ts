/**
 * The original wire format: clients send plain text frames; the server sends
 * each event as one JSON text frame `{"body", "origin", "sentAt"}`.
 *
 * @module
 */

import type { ChatEvent } from "../events.ts";

/** Frames already made, so a broadcast event is serialized once, not per recipient. */
const frames = new WeakMap<ChatEvent, string>();

/** The JSON text frame for `event`. */
export function encodeTextFrame(event: ChatEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = JSON.stringify({
      body: event.body,
      origin: event.origin,
      sentAt: event.sentAt.toISOString(),
    });
    frames.set(event, frame);
  }
  return frame;
}
