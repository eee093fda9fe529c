/** What an instance publishes, it reads back from the stream without decoding it again. */

import { assertEquals, assertStrictEquals } from "@std/assert";
import type { StreamWriter } from "../../../src/broker/nats/acks.ts";
import { Publisher } from "../../../src/broker/nats/publisher.ts";
import { readRoomNotes } from "../../../src/broker/nats/batch.ts";
import type { MessageNote } from "../../../src/broker/types.ts";

interface Sent {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly id: string;
}

/** A stream that stores everything at once, and the publisher writing to it. */
function publisher(): { publisher: Publisher; sent: Sent[] } {
  const sent: Sent[] = [];
  const stream: StreamWriter = {
    publish(subject, payload, id) {
      sent.push({ subject, payload, id });
      return Promise.resolve();
    },
    forget() {},
  };
  return {
    publisher: new Publisher(stream, {
      instance: "a1",
      maxOutbox: 10_000,
      maxPayload: () => 1024 * 1024,
    }),
    sent,
  };
}

const note = (id: number): MessageNote => ({
  kind: "message",
  room: "lobby",
  id: `a1.${id}`,
  sentAt: id,
  author: { instance: "a1", userId: 1, name: "Ann" },
  text: `message ${id}`,
  emote: false,
});

/** Lets the publisher batch this turn's notes and send them. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("an own batch read back is the one written, once, and only when identical", async () => {
  const { publisher: out, sent } = publisher();
  const notes = [note(1), note(2)];
  for (const each of notes) assertEquals(out.publish(each), "queued");
  await turn();
  assertEquals(sent.length, 1);
  const [{ subject, payload, id }] = sent;
  // What others decode from the stream is what this instance delivers without decoding.
  const decoded = readRoomNotes(new TextDecoder().decode(payload), "lobby", 1000);
  assertEquals(decoded.notes, notes);
  // A message under the same id that is not the one sent is decoded like any other.
  const forged = payload.slice();
  forged[forged.indexOf(0x31)] = 0x32;
  assertEquals(out.readBack(id, subject, forged), undefined, "other bytes of the same length");
  assertEquals(out.readBack(id, subject, payload), undefined, "asked once already");

  assertEquals(out.publish(note(3)), "queued");
  await turn();
  const second = sent[1];
  assertEquals(out.readBack(second.id, "chat.room.other.m", second.payload), undefined, "subject");
  assertEquals(out.publish(note(4)), "queued");
  await turn();
  const third = sent[2];
  const batch = out.readBack(third.id, third.subject, third.payload);
  assertEquals([batch?.from, batch?.n, batch?.refused], ["a1", 3, []]);
  assertStrictEquals(batch?.notes[0]?.id, "a1.4");
  assertEquals(out.readBack(third.id, third.subject, third.payload), undefined, "read back once");
  assertEquals(out.readBack(undefined, third.subject, third.payload), undefined, "no id");
});

Deno.test("own batches nobody reads back are kept 1,024 and 8 MiB at most", async () => {
  const { publisher: out, sent } = publisher();
  const readBack = (index: number) =>
    out.readBack(sent[index].id, sent[index].subject, sent[index].payload)?.n;
  for (let n = 1; n <= 1025; n++) {
    out.publish(note(n));
    await Promise.resolve();
  }
  await turn();
  assertEquals(sent.length, 1025);
  assertEquals(readBack(0), undefined, "the oldest went");
  assertEquals([readBack(1), readBack(1024)], [2, 1025]);

  // Batches of about 100 KB each: 8 MiB holds the newest 83 of 100.
  for (let n = 1; n <= 100; n++) {
    out.publish({ ...note(n), text: "x".repeat(100_000) });
    await Promise.resolve();
  }
  await turn();
  assertEquals(readBack(1025 + 16), undefined, "past the bytes kept");
  assertEquals([readBack(1025 + 17), readBack(1124)], [1043, 1125]);
});

/** A stream that answers each publish when the test says, and tells when something is sent. */
function heldStream() {
  const sent: (Sent & { ack(): void; fail(): void })[] = [];
  let waiting: (() => void) | undefined;
  const stream: StreamWriter = {
    publish(subject, payload, id) {
      return new Promise((resolve, reject) => {
        sent.push({
          subject,
          payload,
          id,
          ack: () => resolve(),
          fail: () => reject(new Error("connection lost midway")),
        });
        waiting?.();
      });
    },
    // As the real writer does: what was in flight is refused, and its answers are not heard.
    forget() {
      for (const each of sent) each.fail();
    },
  };
  const out = new Publisher(stream, {
    instance: "a1",
    maxOutbox: 10_000,
    maxPayload: () => 1024 * 1024,
  });
  /** Resolves once `count` stream messages were sent in all. */
  const sends = (count: number) =>
    new Promise<void>((resolve) => {
      waiting = () => {
        if (sent.length >= count) resolve();
      };
      waiting();
    });
  const texts = (index: number) =>
    readRoomNotes(new TextDecoder().decode(sent[index].payload), "lobby", 1000).notes
      .map((each) => each?.kind === "message" ? each.text : undefined);
  return { out, sent, sends, texts };
}

Deno.test("a room's notes wait while its last message is unacknowledged, then go out as one", async () => {
  const { out, sent, sends, texts } = heldStream();
  out.publish(note(1));
  await sends(1);
  out.publish(note(2));
  await turn();
  out.publish(note(3));
  out.publish({ ...note(4), room: "other" });
  await sends(2);
  await turn();
  assertEquals(sent.map((each) => each.subject), ["chat.room.lobby.m", "chat.room.other.m"]);
  assertEquals(out.waiting, 4);

  sent[0].ack();
  await sends(3);
  assertEquals(sent[2].subject, "chat.room.lobby.m");
  assertEquals(texts(2), ["message 2", "message 3"]);
  sent[1].ack();
  sent[2].ack();
  await out.drained();
  assertEquals(out.waiting, 0);
  out.close();
});

Deno.test("a room's messages are stored in the order sent, even when one must go again", async () => {
  const { out, sent, sends, texts } = heldStream();
  out.publish(note(1));
  await sends(1);
  out.publish(note(2));
  await turn();
  sent[0].fail();
  // The first goes again, exactly as before, and only then the second.
  await sends(2);
  assertEquals([sent[1].id, sent[1].payload], [sent[0].id, sent[0].payload]);
  await turn();
  assertEquals(sent.length, 2);
  sent[1].ack();
  await sends(3);
  assertEquals(texts(2), ["message 2"]);
  sent[2].ack();
  await out.drained();
  out.close();
});

Deno.test("what was in flight when the link dropped goes again, under the same ids", async () => {
  const { out, sent, sends } = heldStream();
  out.publish(note(1));
  out.publish({ ...note(2), room: "other" });
  await sends(2);
  out.connected = false;
  // An answer from the link that dropped is not heard: the batch goes again, and the stream,
  // which remembers ids, keeps it once.
  sent[1].ack();
  await turn();
  out.connected = true;
  await sends(4);
  assertEquals(sent.map((each) => each.subject), [
    "chat.room.lobby.m",
    "chat.room.other.m",
    "chat.room.lobby.m",
    "chat.room.other.m",
  ]);
  assertEquals([sent[2].id, sent[3].id], [sent[0].id, sent[1].id]);
  sent[2].ack();
  sent[3].ack();
  await out.drained();
  out.close();
});

Deno.test("a goodbye is queued past max_outbox, where anything else is refused", () => {
  const stream: StreamWriter = { publish: () => Promise.resolve(), forget() {} };
  const out = new Publisher(stream, {
    instance: "a1",
    maxOutbox: 2,
    maxPayload: () => 1024 * 1024,
  });
  out.connected = false;
  assertEquals([out.publish(note(1)), out.publish(note(2)), out.publish(note(3))], [
    "queued",
    "queued",
    "busy",
  ]);
  const goodbye = {
    kind: "presence",
    room: "lobby",
    id: "a1.gone.1",
    sentAt: 4,
    author: { instance: "a1", userId: 1, name: "Ann" },
    action: "leave",
    notice: "disconnected",
  } as const;
  assertEquals(out.publish(goodbye, { goodbye: true }), "queued");
  assertEquals(out.waiting, 3);
  out.close();
});
