/** Fakes and fixtures shared by the unit tests. */

import { Chatroom, type ChatroomOptions } from "../src/chatroom.ts";
import { type Config, loadConfig } from "../src/config.ts";
import type { ChatEvent, Origin, Sink } from "../src/events.ts";
import type { User } from "../src/user.ts";

/** The fixed time every fake-clock event carries. */
export const NOW = new Date("2026-01-02T03:04:05.678Z");

/** The shipped test environment's config, read once. */
export const TEST_CONFIG: Config = await loadConfig({
  flags: { env: "test" },
  getEnv: () => undefined,
});
export const TEST_CHAT_CONFIG = TEST_CONFIG.chat;

/** A clock that moves only when told to. */
export class FakeClock {
  #time: number;

  constructor(start: Date = NOW) {
    this.#time = start.getTime();
  }

  readonly now = (): Date => new Date(this.#time);

  advance(ms: number): void {
    this.#time += ms;
  }
}

/** A sink that records what it is sent. */
export class FakeSink implements Sink {
  readonly events: ChatEvent[] = [];
  closed: { code: number; reason: string } | undefined;

  send(event: ChatEvent): void {
    this.events.push(event);
  }

  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }

  /** Returns and forgets what was sent so far, as `[origin, body]` pairs. */
  take(): [Origin, string][] {
    return this.events.splice(0).map((event) => [event.origin, event.body]);
  }
}

/** Names `Guest1`, `Guest2`, ... in order, skipping taken ones. */
export function sequentialNames(): (isTaken: (name: string) => boolean) => string {
  let next = 1;
  return (isTaken) => {
    let name: string;
    do name = `Guest${next++}`; while (isTaken(name));
    return name;
  };
}

/** A chatroom on the test config with a fixed clock and predictable names. */
export function createTestChatroom(options: Partial<ChatroomOptions> = {}): Chatroom {
  return new Chatroom({
    config: TEST_CHAT_CONFIG,
    now: () => NOW,
    generateName: sequentialNames(),
    ...options,
  });
}

/** A test chatroom with `count` users already connected and their sinks emptied. */
export function chatroomWith(
  count: number,
  options: Partial<ChatroomOptions> = {},
): { chatroom: Chatroom; sinks: FakeSink[]; users: User[] } {
  const chatroom = createTestChatroom(options);
  const sinks = Array.from({ length: count }, () => new FakeSink());
  const users = sinks.map((sink) => chatroom.connect(sink));
  for (const sink of sinks) sink.take();
  return { chatroom, sinks, users };
}
