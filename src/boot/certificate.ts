/**
 * What the server can tell of its own certificate before serving it.
 *
 * @module
 */

/** The DER bytes of the basicConstraints extension's identifier (2.5.29.19). */
const BASIC_CONSTRAINTS = [0x06, 0x03, 0x55, 0x1d, 0x13];

/** The DER bytes of the first certificate of a PEM text, if it holds one. */
function firstCertificate(pem: string): Uint8Array | undefined {
  const match = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(pem);
  if (match === null) return undefined;
  try {
    return Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Whether the first certificate of `pem` says it is a certificate authority
 * (basicConstraints CA:TRUE), as OpenSSL 3 makes a self-signed one unless
 * told otherwise. Browsers and curl accept such a certificate for a server;
 * Deno's TLS (rustls) refuses it (`CaUsedAsEndEntity`), so Deno clients, the
 * health check among them, cannot connect.
 */
export function isCaCertificate(pem: string): boolean {
  const der = firstCertificate(pem);
  if (der === undefined) return false;
  for (let at = 0; at + BASIC_CONSTRAINTS.length < der.length; at++) {
    if (!BASIC_CONSTRAINTS.every((byte, i) => der[at + i] === byte)) continue;
    let next = at + BASIC_CONSTRAINTS.length;
    // An optional "critical" flag, then the extension's value: an OCTET STRING
    // holding SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }.
    if (der[next] === 0x01) next += 2 + der[next + 1];
    if (der[next] !== 0x04 || der[next + 2] !== 0x30) return false;
    const sequence = next + 2;
    return der[sequence + 1] > 0 && der[sequence + 2] === 0x01 && der[sequence + 3] === 0x01 &&
      der[sequence + 4] !== 0x00;
  }
  return false;
}
