/** Fakes and fixtures shared by the unit tests. */

import { LocalBroker } from "../src/broker/local.ts";
import type { Broker, PublishOutcome, RoomNote } from "../src/broker/types.ts";
import { Chatroom, type ChatroomOptions } from "../src/chat/chatroom.ts";
import type {
  ChatEvent,
  CloseReason,
  Origin,
  SessionStart,
  Sink,
} from "../src/vocabulary/events.ts";
import type { User } from "../src/chat/user.ts";
import { type Config, loadConfig } from "../src/config/mod.ts";
import { decodeV1Frame } from "../src/protocol/v1.ts";

/** The fixed time every fake-clock event carries, in milliseconds since the Unix epoch. */
export const NOW: number = Date.parse("2026-01-02T03:04:05.678Z");

/** The shipped test environment's config, read once. */
export const TEST_CONFIG: Config = await loadConfig({
  flags: { env: "test" },
  getEnv: () => undefined,
});
export const TEST_CHAT_CONFIG = TEST_CONFIG.chat;

/** A clock that moves only when told to. */
export class FakeClock {
  #time: number;

  constructor(start: number = NOW) {
    this.#time = start;
  }

  readonly now = (): number => this.#time;

  advance(ms: number): void {
    this.#time += ms;
  }
}

/** A sink that records what it is sent. */
export class FakeSink implements Sink {
  readonly events: ChatEvent[] = [];
  /** For each event, whether it was sent as its author's own copy. */
  readonly own: boolean[] = [];
  closed: CloseReason | undefined;
  /** Who waits for an event, and for which. */
  readonly #waiting: { match: (event: ChatEvent) => boolean; found: (event: ChatEvent) => void }[] =
    [];

  send(event: ChatEvent, own = false): void {
    this.events.push(event);
    this.own.push(own);
    for (const waiter of [...this.#waiting]) {
      if (!waiter.match(event)) continue;
      this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
      waiter.found(event);
    }
  }

  /**
   * The first event sent (already, or from now on) that `match` accepts, for
   * a chat whose answers come once a promise settles; fails after a second.
   */
  waitFor(match: (event: ChatEvent) => boolean, what = "a matching event"): Promise<ChatEvent> {
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        timer: undefined as ReturnType<typeof setTimeout> | undefined,
        found: (event: ChatEvent) => {
          clearTimeout(waiter.timer);
          resolve(event);
        },
      };
      // Listening before anything else: starting a timer lets the runtime deliver what was due.
      this.#waiting.push(waiter);
      waiter.timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        reject(new Error(`No ${what} came`));
      }, 1000);
      const sent = this.events.find(match);
      if (sent === undefined || !this.#waiting.includes(waiter)) return;
      this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
      waiter.found(sent);
    });
  }

  close(reason: CloseReason): void {
    this.closed = reason;
  }

  /** Returns and forgets what was sent so far, as `[origin, body]` pairs (`SELF` for own copies). */
  take(): [Origin, string][] {
    const own = this.own.splice(0);
    return this.events.splice(0).map((event, index) => [
      own[index] ? "SELF" : event.origin,
      event.body,
    ]);
  }
}

/**
 * Hands `user`'s text frame of the original protocol to the chat, as a
 * connection does: from the device `from`, when the user has several.
 */
export function receive(chatroom: Chatroom, user: User, text: string, from?: Sink): void {
  chatroom.handle(user, decodeV1Frame(text), from);
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

/** A chatroom on the test config, alone, with a fixed clock and predictable names. */
export function createTestChatroom(options: Partial<ChatroomOptions> = {}): Chatroom {
  return new Chatroom({
    config: TEST_CHAT_CONFIG,
    broker: new LocalBroker(),
    now: () => NOW,
    generateName: sequentialNames(),
    ...options,
  });
}

/**
 * A broker alone whose log publishes through `publish`, which may hand a
 * note on to the real `next` (to refuse some, or fail on them).
 */
export function brokerPublishing(
  publish: (note: RoomNote, next: (note: RoomNote) => PublishOutcome) => PublishOutcome,
): Broker {
  const inner = new LocalBroker();
  return {
    instance: inner.instance,
    healthy: true,
    records: inner.records,
    log: { ...inner.log, publish: (note) => publish(note, inner.log.publish) },
    typing: (note) => inner.typing(note),
    attach: (handler) => inner.attach(handler),
    start: () => inner.start(),
    close: () => inner.close(),
  };
}

/** Starts a session the chat must accept. */
export function connect(chatroom: Chatroom, sink: Sink, start: SessionStart = {}): User {
  const user = chatroom.connect(sink, start);
  if (user === undefined) throw new Error("The chat refused the session");
  return user;
}

/** A test chatroom with `count` users already connected and their sinks emptied. */
export function chatroomWith(
  count: number,
  options: Partial<ChatroomOptions> = {},
): { chatroom: Chatroom; sinks: FakeSink[]; users: User[] } {
  const chatroom = createTestChatroom(options);
  const sinks = Array.from({ length: count }, () => new FakeSink());
  const users = sinks.map((sink) => connect(chatroom, sink));
  for (const sink of sinks) sink.take();
  return { chatroom, sinks, users };
}
