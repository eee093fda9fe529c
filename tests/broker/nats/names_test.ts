/** The cluster's names on a private nats-server: leases, and what a name let go leaves behind. */

import { assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { guardKeys } from "../../../src/broker/nats/guards.ts";
import { ClusterNames } from "../../../src/broker/nats/names.ts";
import { NAMES_BUCKET, openStorage } from "../../../src/broker/nats/storage.ts";
import { connectNats } from "../../../src/broker/nats/tcp.ts";
import { bucketKey } from "../../../src/broker/nats/wire.ts";
import { nameKey } from "../../../src/text/names.ts";
import { within } from "../../e2e/_client.ts";
import { natsAvailable, startNats } from "../../e2e/_nats.ts";

const ignore = !natsAvailable();
const HOLDER = { userId: 1, room: "lobby", rank: 0 };
const KEY = bucketKey(nameKey("Ann"));

/** Instances `a` and `b`, each on its own connection to one nats-server. */
async function withNames(
  body: (setup: { a: ClusterNames; b: ClusterNames; bucket: KV }) => Promise<void>,
): Promise<void> {
  const server = await startNats();
  const connections: NatsConnection[] = [];
  try {
    const names = async (instance: string) => {
      const nc = await connectNats({ servers: server.url });
      connections.push(nc);
      const { buckets } = await openStorage(nc, { nameTtl: 60, historySize: 10, keptPerRoom: 10 });
      const names = new ClusterNames({
        instance,
        bucket: buckets.names,
        bucketName: NAMES_BUCKET,
        back: () => Promise.resolve(),
        lost: () => {},
        seen: () => {},
        lapse: 61_000,
        malformed: (subject, error) => {
          throw new Error(`${subject}: ${error}`);
        },
      });
      await names.instances.register();
      return { names, bucket: buckets.names };
    };
    const [a, b] = [await names("aaaa"), await names("bbbb")];
    await body({ a: a.names, b: b.names, bucket: a.bucket });
  } finally {
    await Promise.all(connections.map((nc) => nc.close()));
    await server.dispose();
  }
}

/** Until `check` holds of the entry of Ann in the bucket. */
function until(bucket: KV, check: (revision: number | undefined) => boolean, what: string) {
  return within(
    (async () => {
      while (true) {
        const entry = await bucket.get(KEY);
        if (check(entry?.operation === "PUT" ? entry.revision : undefined)) return;
        await delay(20);
      }
    })(),
    what,
    3000,
  );
}

Deno.test({
  name: "a name is let go only when its last write NATS took is older than the lease",
  ignore,
  async fn() {
    await withNames(async ({ a }) => {
      const before = performance.now();
      assertEquals(await a.claim("Ann", HOLDER), true);
      assertEquals(a.lapse(before), []);
      assertEquals(a.lapse(performance.now() + 1).map((entry) => entry.name), ["Ann"]);
      assertEquals(a.lapse(performance.now() + 1), []);
    });
  },
});

Deno.test({
  name: "a name let go is free again once NATS takes the delete, a write in flight or not",
  ignore,
  async fn() {
    await withNames(async ({ a, b, bucket }) => {
      assertEquals(await a.claim("Ann", HOLDER), true);
      const claimed = (await bucket.get(KEY))!.revision;
      // A room change is on its way when the lease runs out (as in a stall)...
      a.announce("Ann", { ...HOLDER, room: "games" });
      assertEquals(a.lapse(performance.now() + 1).map((entry) => entry.name), ["Ann"]);
      // ...and lands afterwards: the entry is still this instance's.
      await until(bucket, (revision) => revision !== undefined && revision > claimed, "the write");
      assertEquals(await b.claim("Ann", HOLDER), false);
      // The next heartbeat, with NATS there, deletes it.
      a.keepAlive();
      await until(bucket, (revision) => revision === undefined, "the delete");
      assertEquals(await b.claim("Ann", HOLDER), true);
    });
  },
});

Deno.test({
  name: "a name let go here can be claimed here again over its own leftover entry",
  ignore,
  async fn() {
    await withNames(async ({ a, b, bucket }) => {
      assertEquals(await a.claim("Ann", HOLDER), true);
      a.lapse(performance.now() + 1);
      assertEquals(await a.claim("Ann", { ...HOLDER, userId: 2 }), true);
      // Claimed again, it is not deleted as a leftover: a delete would be sent once the first
      // answer is read, before the second look.
      a.keepAlive();
      await bucket.get(KEY);
      const entry = await bucket.get(KEY);
      assertEquals(JSON.parse(entry!.string()).userId, 2);
      assertEquals(await b.claim("Ann", HOLDER), false);
    });
  },
});

Deno.test({
  name: "a look-alike guard taken elsewhere meanwhile is not written over by its old holder",
  ignore,
  async fn() {
    await withNames(async ({ a, bucket }) => {
      assertEquals(await a.claim("Ann", HOLDER), true);
      const [guard] = guardKeys("Ann");
      // Another instance holds it now (a's link was stalled, say, and it took the guard as dead).
      const theirs = JSON.stringify({ name: "AnnX", instance: "bbbb" });
      await bucket.put(guard, theirs);
      // A renewal sent blind would reach NATS before this look, on the same connection; one over
      // a's own revision fails, and writes nothing after.
      a.keepAlive();
      assertEquals((await bucket.get(guard))?.string(), theirs);
    });
  },
});
