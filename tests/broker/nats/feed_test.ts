/** A room's feed on a private nats-server: what its publishers' batch numbers say was lost. */

import { assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { jetstream } from "@nats-io/jetstream";
import { RoomFeed } from "../../../src/broker/nats/feed.ts";
import { openStorage, STREAM } from "../../../src/broker/nats/storage.ts";
import { connectNats } from "../../../src/broker/nats/tcp.ts";
import { within } from "../../e2e/_client.ts";
import { natsAvailable, startNats } from "../../e2e/_nats.ts";

Deno.test({
  name: "batches nobody here can read neither open a gap nor hide one",
  ignore: !natsAvailable(),
  async fn() {
    const nats = await startNats();
    const nc = await connectNats({ servers: nats.url });
    const feedMessages: number[] = [];
    const lost: number[] = [];
    let feed: RoomFeed | undefined;
    try {
      const { jsm } = await openStorage(nc, { nameTtl: 5, historySize: 100, keptPerRoom: 100 });
      const js = jetstream(nc);
      const batch = (from: string, n: number, text: string) =>
        js.publish(
          "chat.room.lobby.m",
          JSON.stringify({
            from,
            n,
            room: "lobby",
            m: [{ i: `${from}.${n}`, t: 1_733_000_000_000, u: 1, a: "Ann", x: text }],
          }),
        );
      await batch("aaaa", 1, "short");
      // Longer than this reader's max_message_len (20), as another instance may allow.
      await batch("aaaa", 2, "x".repeat(50));
      await batch("aaaa", 3, "short again");
      // Garbage under a real publisher's id, numbered far ahead; and under a new one.
      await js.publish("chat.room.lobby.m", '{"from":"aaaa","n":1000000,"m":[{"bogus":1}]}');
      await js.publish("chat.room.lobby.m", '{"from":"bbbb","n":500,"m":[{"bogus":1}]}');
      await batch("aaaa", 4, "still counted");
      // Batch 5 really went missing.
      await batch("aaaa", 6, "after a loss");
      feed = new RoomFeed({
        js,
        jsm,
        stream: STREAM,
        room: "lobby",
        maxText: 20,
        deliver: (_notes, seq) => feedMessages.push(seq),
        readBack: () => undefined,
        malformed: () => {},
        lost: (messages) => lost.push(messages),
      });
      await within(
        (async () => {
          while (feedMessages.length < 7) await delay(20);
        })(),
        "the seven stream messages",
        5000,
      );
      assertEquals(lost, [1]);
    } finally {
      feed?.stop();
      await nc.close();
      await nats.dispose();
    }
  },
});
