/**
 * A connection whose account's live session is on another instance: what it
 * does while the other instance is asked, once it took the device, and when
 * it did not.
 */

import { assertEquals } from "@std/assert";
import type { Identity } from "../../src/auth/tokens.ts";
import type { DeviceEnd, DeviceLink, Relay } from "../../src/broker/types.ts";
import { createMetrics } from "../../src/metrics.ts";
import { Connection, type SocketLike } from "../../src/socket/connection.ts";
import { Outbox } from "../../src/socket/outbox.ts";
import { type DeviceRelay, serveRelayedDevices } from "../../src/socket/relay.ts";
import { connect, createTestChatroom, FakeSink } from "../_fakes.ts";
import { hs256 } from "../_tokens.ts";

class FakeSocket implements SocketLike {
  bufferedAmount = 0;
  readonly frames: string[] = [];
  closedWith: [number | undefined, string | undefined] | undefined;

  send(data: string): void {
    this.frames.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
  }
}

/** A link that keeps what the device sends and how it was closed. */
class FakeLink implements DeviceLink {
  readonly sent: (string | ArrayBuffer)[] = [];
  closes = 0;

  send(data: string | ArrayBuffer): void {
    this.sent.push(data);
  }

  close(): void {
    this.closes++;
  }
}

const ALICE: Identity = { name: "Alice", roles: new Set(), expiresAt: undefined };

/**
 * A text connection signed in as Alice through `?token=`, whose relay answers
 * when `answer` is called; `end` is what the session's side writes through.
 */
function relayedConnection(options: { bufferedBytes?: number; protocol?: "v1" | "v2" } = {}) {
  const socket = new FakeSocket();
  const chatroom = createTestChatroom();
  let answer: (joined: DeviceLink | "not_live" | "unavailable") => void = () => {};
  let end: DeviceEnd | undefined;
  const asked: string[] = [];
  const relay: DeviceRelay = {
    join(name, opening, deviceEnd) {
      asked.push(`${name} ${opening.protocol} ${opening.token}`);
      end = deviceEnd;
      return new Promise((resolve) => answer = resolve);
    },
  };
  const connection = new Connection(socket, chatroom, {
    protocol: options.protocol ?? "v1",
    limits: {
      maxFrameBytes: 65536,
      maxBufferedBytes: options.bufferedBytes ?? 1 << 20,
      maxInboundBytesPerSecond: 1 << 20,
    },
    metrics: createMetrics(),
    outbox: new Outbox(),
    identity: ALICE,
    token: "the-token",
    relay,
  });
  connection.opened();
  return {
    socket,
    chatroom,
    connection,
    asked,
    answer: (joined: DeviceLink | "not_live" | "unavailable") => answer(joined),
    end: () => end!,
  };
}

/** Lets the promise callbacks queued so far run. */
const settled = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Waits until `done` holds, 5 s at most. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !done(); await settled()) {
    if (Date.now() - started > 5000) throw new Error(`Timed out waiting for ${what}`);
  }
}

Deno.test("a relayed device's frames go to its session's instance, in order", async () => {
  const device = relayedConnection();
  assertEquals(device.asked, ["Alice v1 the-token"]);
  device.connection.received("sent while asking");
  const link = new FakeLink();
  device.answer(link);
  await settled();
  device.connection.received("sent after");
  assertEquals(link.sent, ["sent while asking", "sent after"]);
  // What the session's instance sends is written as it is; its close closes the socket.
  device.end().frame("Welcome, Alice");
  device.end().ended(4003, "removed by a moderator");
  assertEquals(device.socket.frames, ["Welcome, Alice"]);
  assertEquals(device.socket.closedWith, [4003, "removed by a moderator"]);
  // No session started here.
  assertEquals(device.chatroom.size, 0);
});

Deno.test("a device whose session is not live elsewhere starts here", async () => {
  const device = relayedConnection();
  device.connection.received("hello, room");
  device.answer("not_live");
  await settled();
  assertEquals(device.chatroom.findUser("Alice")?.name, "Alice");
  assertEquals(device.socket.frames.some((frame) => frame.includes("hello, room")), true);
});

Deno.test("a device not taken by its session's instance is told to try again", async () => {
  const device = relayedConnection();
  device.answer("unavailable");
  await settled();
  // Starting here would take the live session from its other devices: nothing starts.
  assertEquals(device.chatroom.size, 0);
  assertEquals(device.socket.closedWith, [1013, "try again in a few seconds"]);
  assertEquals(device.socket.frames.map((frame) => JSON.parse(frame).body), [
    "Your account cannot be signed in here yet: another server of this chat holds it and does not answer, or the servers cannot reach each other. Try again in a few seconds.",
  ]);
});

Deno.test("a device that closes while its session's instance is asked closes the link", async () => {
  const device = relayedConnection();
  device.connection.closed();
  const link = new FakeLink();
  device.answer(link);
  await settled();
  assertEquals([link.sent, link.closes], [[], 1]);
});

Deno.test("a relayed device too slow to read leaves its session at once", async () => {
  const device = relayedConnection({ bufferedBytes: 10 });
  const link = new FakeLink();
  device.answer(link);
  await settled();
  device.socket.bufferedAmount = 1000;
  for (let i = 0; i < 8; i++) device.end().frame(`line ${i}`);
  assertEquals(device.socket.closedWith?.[0], 1013);
  // Not when the stalled socket's close handshake ends, which may take long.
  assertEquals(link.closes, 1);
});

/** A token-mode chatroom where Alice's session is live, serving relayed devices; and how to relay one. */
async function sessionSide() {
  const { verifier, sign } = await hs256("a-relay-test-secret-of-at-least-32-characters");
  const chatroom = createTestChatroom({ auth: { tokenMode: true, expiryWarning: 60 } });
  connect(chatroom, new FakeSink(), { identity: ALICE });
  let take: Parameters<Relay["serve"]>[0] | undefined;
  const relay: Relay = {
    open: () => Promise.resolve("unavailable"),
    serve: (serving) => take = serving,
  };
  serveRelayedDevices(relay, chatroom, {
    limits: { maxFrameBytes: 65536, maxBufferedBytes: 1 << 20, maxInboundBytesPerSecond: 1 << 20 },
    metrics: createMetrics(),
    outbox: new Outbox(),
    verifier,
  });
  return { chatroom, tokenFor: (name: string) => sign(name), take: take! };
}

/** A link on the session's side that keeps what goes to the device. */
class DeviceSide implements DeviceLink {
  readonly frames: string[] = [];
  closedWith: number | undefined;

  send(data: string | ArrayBuffer): void {
    if (typeof data === "string") this.frames.push(data);
  }

  close(code: number): void {
    this.closedWith = code;
  }
}

Deno.test("a relayed device signs in with a token of its own account only", async () => {
  const { chatroom, tokenFor, take } = await sessionSide();
  const link = new DeviceSide();
  const end = await take({ name: "Alice", protocol: "v2" }, link);
  if (end === undefined) throw new Error("Alice's live session did not take the device");
  end.frame(JSON.stringify({ type: "hello", auth: await tokenFor("Carol") }));
  await until(() => link.closedWith !== undefined, "the device to be refused");
  assertEquals(link.closedWith, 4001);
  assertEquals(chatroom.findUser("Carol"), undefined);

  // With Alice's own token it joins her session.
  const own = new DeviceSide();
  const ownEnd = await take({ name: "Alice", protocol: "v2" }, own);
  ownEnd!.frame(JSON.stringify({ type: "hello", auth: await tokenFor("Alice") }));
  await until(() => own.frames.some((frame) => frame.includes('"welcome"')), "the welcome");
  assertEquals(own.closedWith, undefined);
  assertEquals(chatroom.findUser("Alice")?.devices.length, 2);
});

Deno.test("a device told to try again reads nothing more, and asks no instance again", async () => {
  const device = relayedConnection({ protocol: "v2" });
  device.connection.received(JSON.stringify({ type: "hello" }));
  assertEquals(device.asked, ["Alice v2 the-token"]);
  device.answer("unavailable");
  await settled();
  assertEquals(device.socket.closedWith?.[0], 1013);
  // A frame already on its way when the close was sent.
  device.connection.received(JSON.stringify({ type: "say", text: "still here?" }));
  await settled();
  assertEquals(device.asked.length, 1);
});
