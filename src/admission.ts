/**
 * Who may open a socket: the origin check and the connection limits, decided
 * before the upgrade so a refused client costs one HTTP response.
 *
 * @module
 */

import type { ConnectionLimits } from "./config/mod.ts";

/** Why an upgrade was refused, with the HTTP answer to give. */
export interface Refusal {
  readonly reason: "origin" | "max_connections" | "max_connections_per_ip";
  readonly status: 403 | 429 | 503;
  readonly message: string;
}

/**
 * Whether a page from `origin` may open a socket here. Clients that send no
 * `Origin` are not browsers, so cross-site hijacking does not apply to them;
 * a page served by this very host is always allowed.
 */
export function isOriginAllowed(
  origin: string | null,
  host: string | null,
  allowed: readonly string[],
): boolean {
  if (origin === null || allowed.includes("*") || allowed.includes(origin)) return true;
  try {
    return host !== null && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Counts open sockets, in all and per client address, against the limits. */
export class Admission {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  #open = 0;

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  /** Open sockets (and upgrades under way). */
  get open(): number {
    return this.#open;
  }

  /**
   * Takes a place for a socket from `address`, or says why not. Every place
   * taken must be given back with {@linkcode Admission.release}.
   */
  admit(request: Request, address: string): Refusal | undefined {
    const { allowedOrigins, maxConnections, maxConnectionsPerIp } = this.#limits;
    const origin = request.headers.get("origin");
    if (!isOriginAllowed(origin, request.headers.get("host"), allowedOrigins)) {
      return { reason: "origin", status: 403, message: `Origin ${origin} is not allowed` };
    }
    if (this.#open >= maxConnections) {
      return {
        reason: "max_connections",
        status: 503,
        message: "The server is full; try again later",
      };
    }
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (fromAddress >= maxConnectionsPerIp) {
      return {
        reason: "max_connections_per_ip",
        status: 429,
        message: `Too many connections from your address (at most ${maxConnectionsPerIp})`,
      };
    }
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    return undefined;
  }

  /** Gives back a place taken by {@linkcode Admission.admit}. */
  release(address: string): void {
    this.#open--;
    const fromAddress = (this.#perAddress.get(address) ?? 1) - 1;
    if (fromAddress === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, fromAddress);
  }
}
