/**
 * IP addresses and networks, as limits, bans and logs use them: parsed
 * strictly (no leading zeros, no zone ids, nothing a lenient parser would
 * read two ways), written one way (RFC 5952 for IPv6; an IPv4 address mapped
 * into IPv6 is written as IPv4), and compared as numbers.
 *
 * An IPv6 client usually holds a whole /64, so per-address limits and bans
 * key IPv6 addresses by their /64 network ({@linkcode addressKey}).
 *
 * @module
 */

/** A network: the bytes of its first address (4 or 16) and the prefix length. */
export interface Network {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Longest text worth parsing: an IPv6 network with an IPv4 tail and a prefix. */
const MAX_LENGTH = 64;

/** The shortest prefixes a network may have: anything wider holds a large part of the Internet. */
const MIN_PREFIX = { 4: 8, 6: 32 } as const;
/** The prefix IPv6 addresses are held and limited by. */
const IPV6_HOLD_PREFIX = 64;

/** Why a text is no address or network, in words for a moderator. */
export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressError";
  }
}

const NOT_AN_ADDRESS = "it is not an IP address or network";

function parseIpv4(text: string): Uint8Array {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part))) {
    throw new AddressError(NOT_AN_ADDRESS);
  }
  if (parts.some((part) => part.length > 1 && part.startsWith("0"))) {
    // 010 is 8 to some parsers and 10 to others: neither is guessed.
    throw new AddressError("an IPv4 address is written without leading zeros");
  }
  const bytes = parts.map(Number);
  if (bytes.some((byte) => byte > 255)) throw new AddressError(NOT_AN_ADDRESS);
  return new Uint8Array(bytes);
}

function parseIpv6(text: string): Uint8Array {
  const halves = text.split("::");
  if (halves.length > 2) throw new AddressError(NOT_AN_ADDRESS);
  /** The 16-bit groups of one half; an IPv4 tail may end the address, nowhere else. */
  const groups = (half: string, last: boolean): number[] => {
    if (half === "") return [];
    const words: number[] = [];
    const pieces = half.split(":");
    for (const [index, piece] of pieces.entries()) {
      if (last && index === pieces.length - 1 && piece.includes(".")) {
        const [a, b, c, d] = parseIpv4(piece);
        words.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        words.push(parseInt(piece, 16));
      } else {
        throw new AddressError(NOT_AN_ADDRESS);
      }
    }
    return words;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) throw new AddressError(NOT_AN_ADDRESS);
  const words = [...head, ...Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  words.forEach((word, index) => {
    bytes[2 * index] = word >> 8;
    bytes[2 * index + 1] = word & 0xff;
  });
  return bytes;
}

/** Whether 16 bytes are an IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`). */
function isMapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((byte) => byte === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * The bytes of an address (4 for IPv4, 16 for IPv6; a mapped IPv4 address
 * gives 4); throws {@linkcode AddressError} saying why `text` is none.
 */
export function parseAddress(text: string): Uint8Array {
  if (text.length > MAX_LENGTH) throw new AddressError(NOT_AN_ADDRESS);
  const bytes = text.includes(":") ? parseIpv6(text) : parseIpv4(text);
  if (isMapped(bytes)) return bytes.slice(12);
  // `::1.2.3.4` (IPv4-compatible, long deprecated) would hold `::/64`, loopback included.
  if (bytes.length === 16 && /\.\d+$/.test(text) && bytes.subarray(0, 12).every((b) => b === 0)) {
    throw new AddressError(`write an IPv4 address as such (${bytes.subarray(12).join(".")})`);
  }
  return bytes;
}

/** Keeps the first `prefix` bits of `bytes`. */
function masked(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((byte, index) => {
    const bits = Math.min(8, Math.max(0, prefix - 8 * index));
    return byte & (0xff << (8 - bits));
  });
}

/**
 * The network `text` names: an address (an IPv4 one alone, an IPv6 one with
 * its /64) or `address/prefix`; host bits are cleared. Throws
 * {@linkcode AddressError} for anything else, or a network so wide it would
 * hold a large part of the Internet.
 */
export function parseNetwork(text: string): Network {
  if (text.length > MAX_LENGTH) throw new AddressError(NOT_AN_ADDRESS);
  const [address, prefixText, ...rest] = text.split("/");
  if (rest.length > 0 || (prefixText !== undefined && !/^(0|[1-9]\d{0,2})$/.test(prefixText))) {
    throw new AddressError(NOT_AN_ADDRESS);
  }
  let bytes = parseAddress(address);
  const family = bytes.length === 4 ? 4 : 6;
  let prefix = prefixText === undefined ? bytes.length * 8 : Number(prefixText);
  if (address.includes(":") && family === 4 && prefixText !== undefined) {
    // A mapped IPv4 network counts its prefix over the 128 bits.
    if (prefix < 96) {
      throw new AddressError(
        `an IPv4 network mapped into IPv6 counts its prefix over 128 bits: write ${
          bytes.join(".")
        }/${prefix}`,
      );
    }
    prefix -= 96;
  }
  const widest = MIN_PREFIX[family];
  if (prefix < widest || prefix > bytes.length * 8) {
    throw new AddressError(
      `an IPv${family} network's prefix is from ${widest} to ${bytes.length * 8}`,
    );
  }
  if (family === 6) prefix = Math.min(prefix, IPV6_HOLD_PREFIX);
  bytes = masked(bytes, prefix);
  return { bytes, prefix };
}

/** An address in its one spelling. */
function formatBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const words = Array.from(
    { length: 8 },
    (_, index) => (bytes[2 * index] << 8) | bytes[2 * index + 1],
  );
  // The longest run of at least two zero words is written "::" (the first, on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && words[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/** A network in its one spelling: `10.0.0.0/8`, `2001:db8::/64`; a single IPv4 address alone. */
export function formatNetwork(network: Network): string {
  const { bytes, prefix } = network;
  const address = formatBytes(bytes);
  return bytes.length === 4 && prefix === 32 ? address : `${address}/${prefix}`;
}

/** Whether `address` (already parsed) lies in `network`. */
export function networkContains(network: Network, address: Uint8Array): boolean {
  if (address.length !== network.bytes.length) return false;
  const inside = masked(address, network.prefix);
  return inside.every((byte, index) => byte === network.bytes[index]);
}

/** The one spelling of an address, or `undefined` when `text` is none. */
export function canonicalAddress(text: string): string | undefined {
  try {
    return formatBytes(parseAddress(text.trim()));
  } catch {
    return undefined;
  }
}

/**
 * One spelling of a client's address: an IPv4 client of a dual-stack
 * listener as IPv4, IPv6 in RFC 5952 form. Text that is no address (never
 * from the runtime) is kept, lowercased and cut short.
 */
export function normalizeAddress(address: string): string {
  return canonicalAddress(address) ?? address.trim().toLowerCase().slice(0, MAX_LENGTH);
}

/**
 * The key per-address limits and bans use for a client's (normalized)
 * address: an IPv4 address itself, an IPv6 address its /64, since one
 * client usually holds a whole /64.
 */
export function addressKey(address: string): string {
  let bytes: Uint8Array;
  try {
    bytes = parseAddress(address);
  } catch {
    return address;
  }
  if (bytes.length === 4) return formatBytes(bytes);
  return formatNetwork({ bytes: masked(bytes, IPV6_HOLD_PREFIX), prefix: IPV6_HOLD_PREFIX });
}
