/** A TCP proxy on loopback whose link a test can cut and heal, for partitions. */

/** A proxy to one port: `cut` drops every connection and refuses new ones until `heal`. */
export interface Proxy {
  /** The port to connect to instead of the target's. */
  readonly port: number;
  cut(): void;
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
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    await from.readable.pipeTo(to.writable).catch(() => {});
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
    heal() {
      open = true;
    },
    async close() {
      open = false;
      listener.close();
      for (const conn of [...links]) drop(conn);
      await accepting;
    },
  };
}
