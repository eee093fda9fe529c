/**
 * The TCP transport against a fake NATS server on loopback: what the
 * library asks of a transport when a link goes stale while writes wait.
 */

import { assertEquals } from "@std/assert";
import type { Status } from "@nats-io/nats-core";
import { connectNats } from "../../../src/broker/nats/tcp.ts";
import { within } from "../../e2e/_client.ts";

const INFO = 'INFO {"server_id":"fake","version":"2.10.0","proto":1,"max_payload":1048576}\r\n';
const encoder = new TextEncoder();

/**
 * A fake server: every connection is greeted and its PINGs answered, except
 * that the first one goes silent (reads nothing more) after its handshake.
 */
function fakeServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let accepted = 0;
  const serve = async (conn: Deno.Conn, silentAfterHandshake: boolean) => {
    await conn.write(encoder.encode(INFO));
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    while (true) {
      const read = await conn.read(buffer).catch(() => null);
      if (read === null) return;
      text += new TextDecoder().decode(buffer.subarray(0, read));
      const pings = text.split("PING\r\n").length - 1;
      text = text.slice(text.lastIndexOf("\n") + 1);
      for (let i = 0; i < pings; i++) await conn.write(encoder.encode("PONG\r\n")).catch(() => {});
      if (pings > 0 && silentAfterHandshake) return;
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      serve(conn, accepted++ === 0);
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the client already.
        }
      }
    },
  };
}

Deno.test("a link whose server stops reading is dropped and dialled again", async () => {
  const server = fakeServer();
  const nc = await connectNats({
    servers: [`nats://127.0.0.1:${server.port}`],
    pingInterval: 200,
    maxPingOut: 2,
    reconnectTimeWait: 50,
    maxReconnectAttempts: -1,
  });
  const statuses: Status["type"][] = [];
  const reconnected = (async () => {
    for await (const status of nc.status()) {
      statuses.push(status.type);
      if (status.type === "reconnect") return;
    }
  })();
  // Enough to fill the socket's buffers, so that writes wait on the silent server.
  const payload = new Uint8Array(512 * 1024);
  for (let i = 0; i < 64; i++) nc.publish("fill", payload);
  await within(reconnected, "the reconnect after the link went stale", 5000);
  assertEquals(statuses.includes("staleConnection"), true, statuses.join(", "));
  await nc.close();
  await server.close();
});

Deno.test("a dial given up while waiting for the greeting closes its socket", async () => {
  // A server that accepts and never says a word (a hung nats-server, a proxy with no backend).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const dial = connectNats({
    servers: [`nats://127.0.0.1:${listener.addr.port}`],
    timeout: 300,
    maxReconnectAttempts: 0,
  });
  const conn = await within(accepted, "the dial");
  await within(dial.then(() => "connected", () => "given up"), "the library to give up", 5000);
  // The client's end closes: the server reads the end of the stream.
  const read = await within(conn.read(new Uint8Array(16)), "the socket to close", 2000);
  assertEquals(read, null);
  conn.close();
  listener.close();
});
