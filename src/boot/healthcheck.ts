/**
 * `--healthcheck`: asks the server configured here for `/healthz`, as a
 * container's health check does.
 *
 * @module
 */

import { deadline } from "@std/async/deadline";
import type { Config } from "../config/mod.ts";
import { isCaCertificate } from "./certificate.ts";
import { readTls } from "./start.ts";

/** The address a local client reaches a server listening on `host` at. */
function localAddress(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host;
}

/** What a health check found: healthy or not, and a line to say (always, when not). */
export interface Health {
  readonly healthy: boolean;
  readonly line?: string;
}

/**
 * Asks the configured server's `/healthz`: healthy when it answers 200,
 * else one line saying why not. Over TLS the server's own certificate is
 * trusted and its name not checked, as the probe reaches it by address. A
 * CA certificate (CA:TRUE) cannot be trusted for a server by Deno's TLS:
 * then the port accepting connections is as much as can be told, and the
 * line says so.
 */
export async function probeHealth(config: Config, timeoutMs: number): Promise<Health> {
  const { host, port } = config.server;
  const hostname = localAddress(host);
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `${config.server.tls === undefined ? "http" : "https"}://${shown}:${port}/healthz`;
  let tls;
  try {
    tls = await readTls(config);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return { healthy: false, line: `Unhealthy: cannot check ${url}: ${reason}` };
  }
  if (tls !== undefined && isCaCertificate(tls.cert)) {
    try {
      (await deadline(Deno.connect({ hostname, port }), timeoutMs)).close();
    } catch {
      return { healthy: false, line: `Unhealthy: nothing accepts connections on ${url}` };
    }
    return {
      healthy: true,
      line: `Healthy as far as can be told: ${url} accepts connections, but cannot be read, ` +
        `as the server's certificate is a CA certificate (CA:TRUE), which Deno's TLS refuses ` +
        `for a server: make one with basicConstraints=critical,CA:FALSE (see README, "TLS")`,
    };
  }
  const probe = async (): Promise<string | undefined> => {
    const conn = tls === undefined
      ? await Deno.connect({ hostname, port })
      : await Deno.connectTls({
        hostname,
        port,
        caCerts: [tls.cert],
        unsafelyDisableHostnameVerification: true,
      });
    try {
      const request =
        `GET /healthz HTTP/1.1\r\nHost: ${shown}:${port}\r\nConnection: close\r\n\r\n`;
      await conn.write(new TextEncoder().encode(request));
      const head = new Uint8Array(64);
      const read = await conn.read(head);
      const status = new TextDecoder().decode(head.subarray(0, read ?? 0)).split("\r\n")[0];
      return /^HTTP\/1\.[01] 200 /.test(status)
        ? undefined
        : `Unhealthy: ${url} answered ${JSON.stringify(status || "nothing")}`;
    } finally {
      conn.close();
    }
  };
  try {
    const problem = await deadline(probe(), timeoutMs);
    return problem === undefined ? { healthy: true } : { healthy: false, line: problem };
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${timeoutMs / 1000} s`
      : error instanceof Error
      ? error.message.split("\n")[0]
      : String(error);
    return { healthy: false, line: `Unhealthy: cannot reach ${url}: ${reason}` };
  }
}
