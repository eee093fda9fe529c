/** Publishing to the stream and hearing it stored, on a private nats-server. */

import { assertEquals, assertRejects } from "@std/assert";
import type { NatsConnection } from "@nats-io/nats-core";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { PublishError, StreamAcks } from "../../../src/broker/nats/acks.ts";
import { connectNats } from "../../../src/broker/nats/tcp.ts";
import { natsAvailable, startNats } from "../../e2e/_nats.ts";

const ignore = !natsAvailable();
const bytes = (text: string) => new TextEncoder().encode(text);

async function withAcks(
  body: (
    setup: { acks: StreamAcks; nc: NatsConnection; stored: () => Promise<number> },
  ) => Promise<void>,
  options: { config?: string[]; timeoutMs?: number } = {},
): Promise<void> {
  const server = await startNats({ config: options.config });
  const nc = await connectNats({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "T", subjects: ["t.>"] });
    const acks = new StreamAcks(nc, options.timeoutMs);
    await body({
      acks,
      nc,
      stored: async () => (await jsm.streams.info("T")).state.messages,
    });
  } finally {
    await nc.close();
    await server.dispose();
  }
}

Deno.test({
  name: "a message the stream stores is acknowledged; the same id again is stored once",
  ignore,
  async fn() {
    await withAcks(async ({ acks, stored }) => {
      await acks.publish("t.a", bytes("one"), "id-1");
      await acks.publish("t.a", bytes("one again"), "id-1");
      await acks.publish("t.b", bytes("two"), "id-2");
      assertEquals(await stored(), 2);
    });
  },
});

Deno.test({
  name: "a subject no stream takes is refused: nobody answers",
  ignore,
  async fn() {
    await withAcks(async ({ acks }) => {
      await assertRejects(
        () => acks.publish("elsewhere", bytes("lost"), "id-1"),
        PublishError,
        "no stream takes this subject (no responders)",
      );
    });
  },
});

Deno.test({
  name: "a payload over NATS's max_payload is refused without being sent",
  ignore,
  async fn() {
    await withAcks(async ({ acks, stored }) => {
      await assertRejects(
        () => acks.publish("t.a", new Uint8Array(5000), "id-1"),
        PublishError,
        "max_payload",
      );
      await acks.publish("t.a", new Uint8Array(4000), "id-2");
      assertEquals(await stored(), 1);
    }, { config: ["max_payload: 4096"] });
  },
});

Deno.test({
  name: "a publish nobody acknowledges fails after the timeout",
  ignore,
  async fn() {
    await withAcks(async ({ acks, nc }) => {
      // A plain subscriber takes the message and says nothing: no "no responders" either.
      const silent = nc.subscribe("quiet");
      await nc.flush();
      const started = Date.now();
      await assertRejects(
        () => acks.publish("quiet", bytes("hello?"), "id-1"),
        PublishError,
        "no answer from the stream in 300 ms",
      );
      const waited = Date.now() - started;
      assertEquals(waited >= 300 && waited < 1000, true, `failed after ${waited} ms`);
      silent.unsubscribe();
    }, { timeoutMs: 300 });
  },
});

Deno.test({
  name: "a message the stream refuses is refused with the stream's reason",
  ignore,
  async fn() {
    await withAcks(async ({ acks, nc }) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: "FULL",
        subjects: ["full.>"],
        max_msgs: 1,
        discard: DiscardPolicy.New,
      });
      await acks.publish("full.a", bytes("first"), "id-1");
      await assertRejects(
        () => acks.publish("full.a", bytes("second"), "id-2"),
        PublishError,
        "maximum messages exceeded",
      );
    });
  },
});

Deno.test({
  name: "what is in flight when the link drops is refused at once",
  ignore,
  async fn() {
    await withAcks(async ({ acks, nc }) => {
      const silent = nc.subscribe("quiet");
      await nc.flush();
      const waiting = acks.publish("quiet", bytes("hello?"), "id-1");
      acks.forget();
      await assertRejects(() => waiting, PublishError, "the link to NATS dropped");
      silent.unsubscribe();
    });
  },
});
