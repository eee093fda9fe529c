import { assertEquals } from "@std/assert";
import { Connection, type SocketLike } from "../src/connection.ts";
import type { ChatEvent } from "../src/events.ts";
import { createMetrics } from "../src/metrics.ts";
import { createTestChatroom, NOW } from "./_fakes.ts";

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

function v2Connection(): { connection: Connection; socket: FakeSocket } {
  const socket = new FakeSocket();
  const connection = new Connection(socket, createTestChatroom(), {
    protocol: "v2",
    limits: { maxFrameBytes: 65536, maxBufferedBytes: 1 << 20 },
    metrics: createMetrics(),
  });
  return { connection, socket };
}

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
  const [ann, bob, cat] = [v2Connection(), v2Connection(), v2Connection()];
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
  connection.close(1001, "server shutting down");
  connection.send(system("too late"));
  await endOfTurn();
  assertEquals(texts(socket), [["goodbye"]]);
  assertEquals(socket.closedWith, 1001);
});
