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

Deno.test("an own batch read back is the one written, once, and only at its length", async () => {
  const { publisher: out, sent } = publisher();
  const notes = [note(1), note(2)];
  for (const each of notes) assertEquals(out.publish(each), "queued");
  await turn();
  assertEquals(sent.length, 1);
  const [{ payload, id }] = sent;
  // What others decode from the stream is what this instance delivers without decoding.
  const decoded = readRoomNotes(new TextDecoder().decode(payload), "lobby", 1000);
  assertEquals(decoded.notes, notes);

  assertEquals(out.readBack(id, payload.length + 1), undefined, "another length");
  assertEquals(out.readBack(id, payload.length), undefined, "asked once already");

  assertEquals(out.publish(note(3)), "queued");
  await turn();
  const second = sent[1];
  const batch = out.readBack(second.id, second.payload.length);
  assertEquals([batch?.from, batch?.n, batch?.refused], ["a1", 2, []]);
  assertStrictEquals(batch?.notes[0]?.id, "a1.3");
  assertEquals(out.readBack(second.id, second.payload.length), undefined, "read back once");
  assertEquals(out.readBack(undefined, second.payload.length), undefined, "no id");
});

Deno.test("own batches nobody reads back are kept 1,024 at most", async () => {
  const { publisher: out, sent } = publisher();
  for (let n = 1; n <= 1025; n++) {
    out.publish(note(n));
    await Promise.resolve();
  }
  await turn();
  assertEquals(sent.length, 1025);
  assertEquals(out.readBack(sent[0].id, sent[0].payload.length), undefined, "the oldest went");
  assertEquals(out.readBack(sent[1].id, sent[1].payload.length)?.n, 2);
  assertEquals(out.readBack(sent[1024].id, sent[1024].payload.length)?.n, 1025);
});
