/** A TCP proxy on loopback whose link a test can cut, freeze and heal, for partitions. */

/**
 * A proxy to one port: `cut` drops every connection and refuses new ones
 * until `heal`; `freeze` passes nothing on, the sockets left open (as a
 * real partition does to TCP), until `heal` lets what was held through.
 */
export interface Proxy {
  /** The port to connect to instead of the target's. */
  readonly port: number;
  cut(): void;
  freeze(): void;
  heal(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:target`. */
export function startProxy(target: number): Proxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const links = new Set<Deno.Conn>();
  let open = true;
  const drop = (conn: Deno.Conn) => {
    links.delete(conn);
    try {
      conn.close();
    } catch {
      // Closed already, by the other side.
    }
  };
  let frozen = false;
  let flowing: Promise<void> = Promise.resolve();
  let thaw = () => {};
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let read = await from.read(buffer); read !== null; read = await from.read(buffer)) {
        // Frozen: nothing more is read either, so the bytes wait in the sockets.
        await flowing;
        for (let sent = 0; sent < read;) sent += await to.write(buffer.subarray(sent, read));
      }
    } catch {
      // Dropped, by the test or by either side.
    }
    drop(from);
    drop(to);
  };
  const accepting = (async () => {
    for await (const client of listener) {
      if (!open) {
        drop(client);
        continue;
      }
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target }).catch(() => null);
      if (server === null) {
        drop(client);
        continue;
      }
      links.add(client).add(server);
      pipe(client, server);
      pipe(server, client);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    cut() {
      open = false;
      for (const conn of [...links]) drop(conn);
    },
    freeze() {
      if (frozen) return;
      frozen = true;
      flowing = new Promise((resolve) => thaw = resolve);
    },
    heal() {
      open = true;
      frozen = false;
      thaw();
    },
    async close() {
      open = false;
      thaw();
      listener.close();
      for (const conn of [...links]) drop(conn);
      await accepting;
    },
  };
}
