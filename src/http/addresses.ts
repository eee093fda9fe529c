/**
 * Client addresses as the limits, bans and logs use them: one spelling per
 * address, and the real client's behind a trusted proxy.
 *
 * @module
 */

/** One spelling of an address: lowercase, and an IPv4 client of a dual-stack listener as IPv4. */
export function normalizeAddress(address: string): string {
  const lower = address.trim().toLowerCase();
  return lower.startsWith("::ffff:") && lower.includes(".") ? lower.slice(7) : lower;
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy,
 * the nearest address in `X-Forwarded-For` that is not one (each proxy
 * appends the address it got the request from).
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trustedProxies: readonly string[],
): string {
  let address = normalizeAddress(peer);
  if (forwardedFor === null || !trustedProxies.includes(address)) return address;
  const hops = forwardedFor.split(",").map(normalizeAddress).filter((hop) => hop !== "");
  while (hops.length > 0 && trustedProxies.includes(address)) address = hops.pop()!;
  return address;
}
