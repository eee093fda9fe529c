/**
 * The client's address behind the proxies the operator trusts.
 *
 * @module
 */

import { canonicalAddress, normalizeAddress } from "../net/ip.ts";

/** The most `X-Forwarded-For` hops read, nearest first: more proxies than this are not ours. */
const MAX_HOPS = 16;

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy,
 * the nearest address in `X-Forwarded-For` that is not one (each proxy
 * appends the address it got the request from). A hop that is no address
 * ends the walk: the proxy that wrote it is the client then.
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trustedProxies: readonly string[],
): string {
  let address = normalizeAddress(peer);
  if (forwardedFor === null || !trustedProxies.includes(address)) return address;
  // Proxies append: the hops nearest to us are last, and only so many are worth reading.
  const hops = forwardedFor.split(",").slice(-MAX_HOPS).map((hop) => hop.trim())
    .filter((hop) => hop !== "");
  while (hops.length > 0 && trustedProxies.includes(address)) {
    const hop = canonicalAddress(hops.pop()!);
    if (hop === undefined) break;
    address = hop;
  }
  return address;
}
