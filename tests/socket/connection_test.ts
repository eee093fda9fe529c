import { assertEquals, assertThrows } from "@std/assert";
import type { ChatEvent, MessageEvent } from "../../src/vocabulary/events.ts";
import { Connection, type SocketLike } from "../../src/socket/connection.ts";
import { createMetrics } from "../../src/metrics.ts";
import { Outbox } from "../../src/socket/outbox.ts";
import { createTestChatroom, NOW } from "../_fakes.ts";

class FakeSocket implements SocketLike {
  readonly bufferedAmount = 0;
  readonly frames: string[] = [];
  /** The close code, once closed; nothing may be sent after it. */
  closedWith: number | undefined;

  send(data: string): void {
    if (this.closedWith !== undefined) throw new Error("sent on a closed socket");
    this.frames.push(data);
  }

  close(code: number): void {
    this.closedWith = code;
  }
}

/** A connection on a fake socket; connections of one server share its `outbox`. */
function fakeConnection(
  outbox = new Outbox(),
  protocol: "v1" | "v2" = "v2",
): { connection: Connection; socket: FakeSocket } {
  const socket = new FakeSocket();
  const connection = new Connection(socket, createTestChatroom(), {
    protocol,
    limits: { maxFrameBytes: 65536, maxBufferedBytes: 1 << 20, maxInboundBytesPerSecond: 1 << 20 },
    metrics: createMetrics(),
    outbox,
  });
  return { connection, socket };
}

const v2Connection = fakeConnection;

function system(text: string): ChatEvent {
  return { type: "system", id: text, sentAt: NOW, origin: "SERVER", body: text, text };
}

/** The texts of each frame a socket was sent. */
function texts(socket: FakeSocket): string[][] {
  return socket.frames.map((frame) => {
    const parsed = JSON.parse(frame);
    return (Array.isArray(parsed) ? parsed : [parsed]).map((event) => event.text);
  });
}

/** Resolves in the next turn of the event loop, after every microtask of this one. */
const endOfTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

Deno.test("v2 sends the events of one turn as one frame per socket", async () => {
  const outbox = new Outbox();
  const [ann, bob, cat] = [v2Connection(outbox), v2Connection(outbox), v2Connection(outbox)];
  const [one, two] = [system("one"), system("two")];
  // Ann and Bob get the same events, Cat the same number but not the same ones.
  for (const { connection } of [ann, bob]) {
    connection.send(one);
    connection.send(two);
  }
  cat.connection.send(one);
  cat.connection.send(system("other"));
  assertEquals(ann.socket.frames, []);
  await endOfTurn();
  assertEquals(texts(ann.socket), [["one", "two"]]);
  assertEquals(texts(bob.socket), [["one", "two"]]);
  assertEquals(texts(cat.socket), [["one", "other"]]);
  // A lone event goes out as itself, not in an array.
  ann.connection.send(one);
  await endOfTurn();
  assertEquals(ann.socket.frames.length, 2);
  assertEquals(JSON.parse(ann.socket.frames[1]).text, "one");
});

Deno.test("v2 gathers events queued in later microtasks of the same turn", async () => {
  const { connection, socket } = v2Connection();
  // As when several frames read in one turn are handled one microtask after another.
  for (const text of ["one", "two", "three"]) {
    connection.send(system(text));
    await Promise.resolve();
  }
  assertEquals(socket.frames, []);
  await endOfTurn();
  assertEquals(texts(socket), [["one", "two", "three"]]);
});

Deno.test("v2 splits a long queue into frames of at most 256 events", async () => {
  const { connection, socket } = v2Connection();
  const events = Array.from({ length: 300 }, (_, n) => system(String(n)));
  for (const event of events) connection.send(event);
  await endOfTurn();
  assertEquals(texts(socket).map((frame) => frame.length), [256, 44]);
  assertEquals(texts(socket).flat(), events.map((event) => event.id));
});

Deno.test("v2 sends what is queued before it closes a socket", async () => {
  const { connection, socket } = v2Connection();
  connection.send(system("goodbye"));
  connection.close("shutdown");
  connection.send(system("too late"));
  await endOfTurn();
  assertEquals(texts(socket), [["goodbye"]]);
  assertEquals(socket.closedWith, 1001);
});

Deno.test("close reasons become WebSocket close codes", () => {
  for (const [reason, code] of [["shutdown", 1001], ["flood", 1008], ["replaced", 4000]] as const) {
    const { connection, socket } = v2Connection();
    connection.close(reason);
    assertEquals(socket.closedWith, code, reason);
  }
});

const message: MessageEvent = {
  type: "message",
  id: "9",
  sentAt: NOW,
  origin: "USER",
  body: "Ann: hi",
  room: "lobby",
  from: "Ann",
  text: "hi",
  seq: 1,
  emote: false,
  epoch: "e1",
};

Deno.test("the author's copy of a message is SELF in the text protocol, the same in v2", async () => {
  const outbox = new Outbox();
  const [author, other] = [fakeConnection(outbox, "v1"), fakeConnection(outbox, "v1")];
  other.connection.send(message);
  author.connection.send(message, true);
  assertEquals(JSON.parse(other.socket.frames[0]).origin, "USER");
  assertEquals(JSON.parse(author.socket.frames[0]).origin, "SELF");
  const [v2Author, v2Other] = [v2Connection(outbox), v2Connection(outbox)];
  v2Author.connection.send(message, true);
  v2Other.connection.send(message);
  await endOfTurn();
  assertEquals(v2Author.socket.frames, v2Other.socket.frames);
});

Deno.test("servers in one process share no encoding state", () => {
  const first = fakeConnection(new Outbox(), "v1");
  const second = fakeConnection(new Outbox(), "v1");
  first.connection.send(message);
  // The same event on another server, then its author's copy on the first.
  second.connection.send(message);
  first.connection.send(message, true);
  assertEquals(first.socket.frames.map((frame) => JSON.parse(frame).origin), ["USER", "SELF"]);
  assertEquals(JSON.parse(second.socket.frames[0]).origin, "USER");
});

Deno.test("event times are ISO 8601, also when several share a millisecond", () => {
  const outbox = new Outbox();
  const times = [0, 1764155100123, 1764155100123, 1764155100124, 0];
  assertEquals(
    times.map((time) => outbox.time(time)),
    times.map((time) => new Date(time).toISOString()),
  );
  assertThrows(() => outbox.time(NaN), RangeError);
});
