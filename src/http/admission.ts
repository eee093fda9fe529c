/**
 * Who may come in: the host check (for every request), then for sockets the
 * origin check, the rate of new connections and the connection limits, all
 * decided before the upgrade so a refused client costs one HTTP response.
 *
 * The limits count what costs: sockets, and sessions that linger after
 * their socket dropped. A socket's place is taken at the upgrade; when the
 * socket closes, its session (if it lingers) keeps the place until it ends
 * or is resumed. An upgrade is refused when the sockets alone reach a limit;
 * when lingering sessions make the count reach it, the upgrade goes on, so
 * that one of them can be resumed, and a new session ends the oldest of
 * them instead (see `Place.crowded`). So dropping sessions never holds more
 * than the limit. Per-address limits key an IPv6 client by its /64.
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

/** What one address (or the whole server) holds. */
interface Held {
  sockets: number;
  lingering: number;
}

/** Counts sockets and lingering sessions, in all and per address, against the limits. */
export class Admission {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, Held>();
  readonly #all: Held = { sockets: 0, lingering: 0 };
  /** New connections left to each address, by address. */
  readonly #connects: Buckets<Limiter>;
  readonly #now: () => number;

  constructor(limits: ConnectionLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    const rate = { rate: limits.connectRate, burst: limits.connectBurst };
    this.#connects = new Buckets((time) => new Limiter(rate, time));
  }

  /** Places held: open sockets, upgrades under way and lingering sessions. */
  get open(): number {
    return this.#all.sockets + this.#all.lingering;
  }

  /** Why any request naming `host` is refused, or `undefined` when it is welcome. */
  checkHost(host: string | null): Refusal | undefined {
    if (isHostAllowed(host, this.#limits.allowedHosts)) return undefined;
    return { reason: "host", status: 421, message: `This server does not answer for ${host}` };
  }

  /**
   * Takes a place for a socket from `address`, or says why not. The place is
   * released once: when the socket closes, or when the session it passed to
   * (see {@linkcode Place.linger}) ends.
   */
  admit(request: Request, address: string): Refusal | Place {
    const { allowedOrigins, maxConnections, maxConnectionsPerIp } = this.#limits;
    const origin = request.headers.get("origin");
    if (!isOriginAllowed(origin, request.headers.get("host"), allowedOrigins)) {
      return { reason: "origin", status: 403, message: `Origin ${origin} is not allowed` };
    }
    if (this.#all.sockets >= maxConnections) {
      return {
        reason: "max_connections",
        status: 503,
        message: "The server is full; try again later",
      };
    }
    const key = addressKey(address);
    const held = this.#perAddress.get(key) ?? { sockets: 0, lingering: 0 };
    if (held.sockets >= maxConnectionsPerIp) {
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
    this.#perAddress.set(key, held);
    return this.#take(key, held, "sockets");
  }

  /** A place of `kind` for the address `key`, counted until released. */
  #take(key: string, held: Held, kind: keyof Held): Place {
    held[kind]++;
    this.#all[kind]++;
    let taken = true;
    const release = (): void => {
      if (!taken) return;
      taken = false;
      held[kind]--;
      this.#all[kind]--;
      if (held.sockets === 0 && held.lingering === 0) this.#perAddress.delete(key);
    };
    const { maxConnections, maxConnectionsPerIp } = this.#limits;
    return {
      crowded: () => {
        if (held.sockets + held.lingering > maxConnectionsPerIp) return "address";
        return this.#all.sockets + this.#all.lingering > maxConnections ? "server" : undefined;
      },
      release,
      linger: () => {
        if (!taken) throw new TypeError("Cannot keep a place that was given back");
        release();
        this.#perAddress.set(key, held);
        return this.#take(key, held, "lingering");
      },
    };
  }

  /** Forgets the connection rates of addresses quiet long enough. */
  sweep(): void {
    this.#connects.sweep(this.#now());
  }
}
