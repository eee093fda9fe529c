/**
 * The relay of devices between two instances, on a private nats-server:
 * how an opening is answered when the session's side is slow, refuses, or
 * is sent garbage.
 */

import { assert, assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsRelay, OPEN_TIMEOUT_MS } from "../../../src/broker/nats/relay.ts";
import { connectNats } from "../../../src/broker/nats/tcp.ts";
import type { DeviceEnd, DeviceLink, DeviceOpening } from "../../../src/broker/types.ts";
import { natsAvailable, startNats } from "../../e2e/_nats.ts";

const ALICE: DeviceOpening = { name: "Alice", protocol: "v2" };

/** Two relays, `a` (the session's side) and `b` (the device's), on one nats-server. */
async function withRelays(
  body: (relays: {
    a: NatsRelay;
    b: NatsRelay;
    /** The connections of `a` and of `b`. */
    connections: NatsConnection[];
    malformed: string[];
  }) => Promise<void>,
  timing = { pingMs: 1000, silentMs: 60_000 },
) {
  const server = await startNats();
  const connections: NatsConnection[] = [];
  const malformed: string[] = [];
  const relay = async (instance: string) => {
    const nc = await connectNats({ servers: server.url });
    connections.push(nc);
    const relay = new NatsRelay({
      nc,
      instance,
      maxPayload: () => 1024 * 1024,
      malformed: (subject) => malformed.push(subject),
      lost: () => {},
      // Silence far longer than any test: a link given up here was given up for another reason.
      ...timing,
    });
    relay.listen();
    return relay;
  };
  const [a, b] = [await relay("aaaa"), await relay("bbbb")];
  try {
    await body({ a, b, connections, malformed });
  } finally {
    a.close();
    b.close();
    await Promise.all(connections.map((nc) => nc.close()));
    await server.dispose();
  }
}

/** Waits until `done` holds, 5 s at most. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !done(); await delay(10)) {
    if (Date.now() - started > 5000) throw new Error(`Timed out waiting for ${what}`);
  }
}

/** An end that keeps what happens to it. */
function recordingEnd(events: string[], who: string): DeviceEnd {
  return {
    frame: (data) => events.push(`${who} got ${data}`),
    ended: (code) => events.push(`${who} ended ${code}`),
  };
}

Deno.test({
  name: "a device is taken, not taken (not live), or told to try again (no answer in time)",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, b }) => {
      const events: string[] = [];
      let take: (link: DeviceLink) => Promise<DeviceEnd | undefined> = () =>
        Promise.resolve(undefined);
      a.serve((_opening, link) => take(link));
      assertEquals(await b.open("aaaa", ALICE, recordingEnd(events, "device")), "not_live");

      take = (link) => {
        // Sent before the answer: it waits on the device's side, then comes first.
        link.send("welcome");
        return Promise.resolve(recordingEnd(events, "session"));
      };
      const link = await b.open("aaaa", ALICE, recordingEnd(events, "device"));
      if (typeof link !== "object") throw new Error(`not taken: ${link}`);
      link.send("hello");
      link.close(1000, "");
      await until(() => events.length === 3, "the frames and the close");
      assertEquals(events, ["device got welcome", "session got hello", "session ended 1000"]);

      // Taken only after the device's side gave up: what started there is ended at once.
      events.length = 0;
      take = async () => {
        await delay(OPEN_TIMEOUT_MS + 500);
        events.push("session took it");
        return recordingEnd(events, "session");
      };
      assertEquals(await b.open("aaaa", ALICE, recordingEnd(events, "device")), "unavailable");
      await until(() => events.length === 2, "the late take and its end");
      assertEquals(events, ["session took it", "session ended 1013"]);
      assertEquals([a.size, b.size], [0, 0]);
    }),
});

Deno.test({
  name: "a slow opening holds up no other",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, b }) => {
      a.serve(async (opening) => {
        if (opening.name === "Slow") await delay(2000);
        return { frame: () => {}, ended: () => {} };
      });
      const end: DeviceEnd = { frame: () => {}, ended: () => {} };
      const slow = b.open("aaaa", { ...ALICE, name: "Slow" }, end);
      const started = Date.now();
      assertEquals(typeof await b.open("aaaa", ALICE, end), "object");
      const took = Date.now() - started;
      assert(took < 1000, `the second opening took ${took} ms`);
      assertEquals(typeof await slow, "object");
    }),
});

Deno.test({
  name: "what cannot be read on the relay's subjects is counted and refused",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, connections: [, nc], malformed }) => {
      a.serve(() => ({ frame: () => {}, ended: () => {} }));
      const parts = [
        "x",
        "[]",
        '{"id":"q","n":1,"k":"z"}',
        '{"id":"q","n":1,"k":"c","code":1005,"reason":""}',
      ];
      for (const data of parts) nc.publish("chat.relay.aaaa", data);
      const answers = [];
      for (
        const data of [
          "garbage",
          JSON.stringify({ ...ALICE, id: "x", from: "b.*" }),
          JSON.stringify({ ...ALICE, id: "x", from: "bbbb", protocol: "v3" }),
        ]
      ) {
        answers.push((await nc.request("chat.relay.aaaa.open", data, { timeout: 1000 })).json());
      }
      assertEquals(answers, [{ ok: false }, { ok: false }, { ok: false }]);
      await until(() => malformed.length === parts.length + answers.length, "every refusal");
      assertEquals(malformed.length, 7);
      assertEquals(a.size, 0);
    }),
});

Deno.test({
  name: "a link to an instance that is gone ends as soon as something is sent on it",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, b, connections: [natsOfA] }) => {
      const events: string[] = [];
      a.serve(() => ({ frame: () => {}, ended: () => {} }));
      const link = await b.open("aaaa", ALICE, recordingEnd(events, "device"));
      if (typeof link !== "object") throw new Error(`not taken: ${link}`);
      // The session's instance dies: its subscriptions go with its connection, once nats-server
      // has seen it go. The device keeps talking meanwhile; no ping nor silence can end the link.
      await natsOfA.close();
      const talking = setInterval(() => link.send("into the void"), 50);
      try {
        await until(() => events.length > 0, "the device to be closed");
      } finally {
        clearInterval(talking);
      }
      assertEquals(events, ["device ended 1013"]);
      assertEquals(b.size, 0);
    }, { pingMs: 60_000, silentMs: 120_000 }),
});

Deno.test({
  name: "a device refused while it starts hears why, and is closed with the code it was given",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, b }) => {
      a.serve((_opening, link) => {
        // As a connection refusing its session does, before the opening is answered.
        link.send("you may not sign in");
        link.close(4001, "sign-in token missing, refused or expired");
        return { frame: () => {}, ended: () => {} };
      });
      const events: string[] = [];
      assertEquals(typeof await b.open("aaaa", ALICE, recordingEnd(events, "device")), "object");
      await until(() => events.length === 2, "the refusal and the close");
      assertEquals(events, ["device got you may not sign in", "device ended 4001"]);
      assertEquals([a.size, b.size], [0, 0]);
    }),
});

Deno.test({
  name: "an instance whose link to NATS drops ends its relayed devices at both ends",
  ignore: !natsAvailable(),
  fn: () =>
    withRelays(async ({ a, b }) => {
      const events: string[] = [];
      a.serve(() => recordingEnd(events, "session"));
      assertEquals(typeof await b.open("aaaa", ALICE, recordingEnd(events, "device")), "object");
      b.disconnected();
      await until(() => events.length === 2, "both ends to be told");
      assertEquals(events.toSorted(), ["device ended 1013", "session ended 1013"]);
      assertEquals([a.size, b.size], [0, 0]);
    }),
});
