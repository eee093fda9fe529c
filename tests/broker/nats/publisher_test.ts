/** What an instance publishes, it reads back from the stream without decoding it again. */

import { assertEquals, assertStrictEquals } from "@std/assert";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { Publisher } from "../../../src/broker/nats/publisher.ts";
import { readRoomNotes } from "../../../src/broker/nats/wire.ts";
import type { MessageNote } from "../../../src/broker/types.ts";

interface Sent {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly id: string;
}

/** A stream that stores everything at once, and the publisher writing to it. */
function publisher(): { publisher: Publisher; sent: Sent[] } {
  const sent: Sent[] = [];
  const js = {
    publish(subject: string, payload: Uint8Array, options: { msgID: string }): Promise<PubAck> {
      sent.push({ subject, payload, id: options.msgID });
      return Promise.resolve({ stream: "CHAT", seq: sent.length, duplicate: false } as PubAck);
    },
  };
  return {
    publisher: new Publisher(js as unknown as JetStreamClient, {
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
