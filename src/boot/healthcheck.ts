/**
 * `--healthcheck`: asks the server configured here for `/healthz`, as a
 * container's health check does.
 *
 * @module
 */

import { deadline } from "@std/async/deadline";
import type { Config } from "../config/mod.ts";
import { readTls } from "./start.ts";

/** The address a local client reaches a server listening on `host` at. */
function localAddress(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host;
}

/**
 * Asks the configured server's `/healthz`; true when it answers 200. Over
 * TLS the server's own certificate is trusted and its name not checked, as
 * the probe reaches it by address.
 */
export async function probeHealth(config: Config, timeoutMs: number): Promise<boolean> {
  const { host, port } = config.server;
  const hostname = localAddress(host);
  const connect = async (): Promise<Deno.Conn> => {
    const tls = await readTls(config);
    if (tls === undefined) return await Deno.connect({ hostname, port });
    return await Deno.connectTls({
      hostname,
      port,
      caCerts: [tls.cert],
      unsafelyDisableHostnameVerification: true,
    });
  };
  const probe = async (): Promise<boolean> => {
    const conn = await connect();
    try {
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      const request =
        `GET /healthz HTTP/1.1\r\nHost: ${shown}:${port}\r\nConnection: close\r\n\r\n`;
      await conn.write(new TextEncoder().encode(request));
      const head = new Uint8Array(64);
      const read = await conn.read(head);
      return /^HTTP\/1\.[01] 200 /.test(new TextDecoder().decode(head.subarray(0, read ?? 0)));
    } finally {
      conn.close();
    }
  };
  try {
    return await deadline(probe(), timeoutMs);
  } catch {
    return false;
  }
}
