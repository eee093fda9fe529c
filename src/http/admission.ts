/**
 * Who may come in: the host check (for every request), then for sockets the
 * origin check, the rate of new connections and the connection limits, all
 * decided before the upgrade so a refused client costs one HTTP response.
 *
 * The limits count places, not sockets: a place is taken at the upgrade and
 * held by the session it starts for as long as that lasts, lingering after
 * a dropped connection included, so dropping sessions cannot get past them.
 * Per-address limits key an IPv6 client by its /64.
 *
 * @module
 */

import { Buckets, Limiter } from "../limits.ts";
import type { ConnectionLimits } from "../config/mod.ts";
import type { RefusalReason } from "../metrics.ts";
import { addressKey } from "../net/ip.ts";
import type { Place } from "../vocabulary/events.ts";

/** Why a request was refused, with the HTTP answer to give. */
export interface Refusal {
  readonly reason: RefusalReason;
  readonly status: 401 | 403 | 421 | 429 | 503;
  readonly message: string;
}

/** Hosts a request may always name: this machine, for local clients and health checks. */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The host part of a `Host` header (without the port, or a final dot), lowercased. */
function hostName(host: string): string {
  const lower = host.toLowerCase();
  const name = lower.startsWith("[") ? lower.slice(0, lower.indexOf("]") + 1) : lower.split(":")[0];
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** A host name or an address, with an optional port: what a `Host` header may be. */
const HOST_HEADER = /^([a-z0-9-]+(\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(:\d{1,5})?$/i;

/**
 * Whether a request may name `host`. Answering any host would let a page
 * of another site reach this server through a name it controls (DNS
 * rebinding); loopback names are always allowed.
 */
export function isHostAllowed(host: string | null, allowed: readonly string[]): boolean {
  if (allowed.includes("*")) return true;
  if (host === null || !HOST_HEADER.test(host)) return false;
  const name = hostName(host);
  return LOOPBACK_HOSTS.has(name) || allowed.some((entry) => hostName(entry) === name);
}

/**
 * Whether a page from `origin` may open a socket here. Clients that send no
 * `Origin` are not browsers, so cross-site hijacking does not apply to them;
 * a page served by this very host is allowed, the host being one the host
 * check let through.
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

/** Counts places (sockets, and the sessions they start), in all and per address, against the limits. */
export class Admission {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  /** New connections left to each address, by address. */
  readonly #connects: Buckets<Limiter>;
  readonly #now: () => number;
  #open = 0;

  constructor(limits: ConnectionLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    const rate = { rate: limits.connectRate, burst: limits.connectBurst };
    this.#connects = new Buckets((time) => new Limiter(rate, time));
  }

  /** Places held: open sockets, upgrades under way and lingering sessions. */
  get open(): number {
    return this.#open;
  }

  /** Why any request naming `host` is refused, or `undefined` when it is welcome. */
  checkHost(host: string | null): Refusal | undefined {
    if (isHostAllowed(host, this.#limits.allowedHosts)) return undefined;
    return { reason: "host", status: 421, message: `This server does not answer for ${host}` };
  }

  /**
   * Takes a place for a socket from `address`, or says why not. The place
   * must be released once, when the socket closes before starting a
   * session or when the session it started ends.
   */
  admit(request: Request, address: string): Refusal | Place {
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
    const key = addressKey(address);
    const fromAddress = this.#perAddress.get(key) ?? 0;
    if (fromAddress >= maxConnectionsPerIp) {
      return {
        reason: "max_connections_per_ip",
        status: 429,
        message: `Too many connections from your address (at most ${maxConnectionsPerIp})`,
      };
    }
    const now = this.#now();
    if (!this.#connects.get(key, now).take(now)) {
      return {
        reason: "connect_rate",
        status: 429,
        message: "Too many new connections from your address: wait a moment",
      };
    }
    this.#open++;
    this.#perAddress.set(key, fromAddress + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#open--;
        const left = (this.#perAddress.get(key) ?? 1) - 1;
        if (left === 0) this.#perAddress.delete(key);
        else this.#perAddress.set(key, left);
      },
    };
  }

  /** Forgets the connection rates of addresses quiet long enough. */
  sweep(): void {
    this.#connects.sweep(this.#now());
  }
}
