/** Addresses and networks: one spelling each, strict parsing, and /64 keys for IPv6. */

import { assertEquals, assertThrows } from "@std/assert";
import {
  AddressError,
  addressKey,
  formatNetwork,
  networkContains,
  normalizeAddress,
  parseAddress,
  parseNetwork,
} from "../../src/net/ip.ts";
import { clientAddress } from "../../src/http/addresses.ts";

Deno.test("networks are written one way", () => {
  const cases: [string, string][] = [
    ["10.1.2.3", "10.1.2.3"],
    ["10.1.2.3/32", "10.1.2.3"],
    ["10.1.2.3/8", "10.0.0.0/8"],
    ["::ffff:10.20.30.40", "10.20.30.40"],
    ["::FFFF:10.20.0.0/112", "10.20.0.0/16"],
    ["2001:DB8::1", "2001:db8::/64"],
    ["2001:db8:0:0:1:0:0:1/48", "2001:db8::/48"],
    ["2001:db8:aaaa:bbbb:cccc::/128", "2001:db8:aaaa:bbbb::/64"],
    ["2001:0db8:0000:0001:0000:0000:0000:0001", "2001:db8:0:1::/64"],
    ["fe80:1:2:3::", "fe80:1:2:3::/64"],
  ];
  for (const [text, shown] of cases) assertEquals(formatNetwork(parseNetwork(text)), shown, text);
});

Deno.test("what is no address or network is refused with the reason", () => {
  const cases: [string, string][] = [
    ["127.000.000.024", "an IPv4 address is written without leading zeros"],
    ["010.1.1.1", "an IPv4 address is written without leading zeros"],
    ["999.1.1.1", "it is not an IP address or network"],
    ["1.2.3", "it is not an IP address or network"],
    ["1.2.3.4.5", "it is not an IP address or network"],
    [":::", "it is not an IP address or network"],
    ["1::2::3", "it is not an IP address or network"],
    ["1:2:3:4:5:6:7:8:9", "it is not an IP address or network"],
    ["fe80::1%eth0", "it is not an IP address or network"],
    ["SERVER", "it is not an IP address or network"],
    ["10.0.0.0/33", "an IPv4 network's prefix is from 8 to 32"],
    ["0.0.0.0/0", "an IPv4 network's prefix is from 8 to 32"],
    ["10.0.0.0/-1", "it is not an IP address or network"],
    ["10.0.0.0/8/8", "it is not an IP address or network"],
    ["10.0.0.0/08", "it is not an IP address or network"],
    ["1.2.3.4::", "it is not an IP address or network"],
    ["::1.2.3.4", "write an IPv4 address as such (1.2.3.4)"],
    [
      "::ffff:10.0.0.0/8",
      "an IPv4 network mapped into IPv6 counts its prefix over 128 bits: write 10.0.0.0/8",
    ],
    ["1.2.3.4::1", "it is not an IP address or network"],
    ["2001:db8::/16", "an IPv6 network's prefix is from 32 to 128"],
    ["1".repeat(100), "it is not an IP address or network"],
  ];
  for (const [text, reason] of cases) {
    assertThrows(() => parseNetwork(text), AddressError, reason, text);
  }
});

Deno.test("a network holds exactly its addresses", () => {
  const network = parseNetwork("10.44.0.0/16");
  assertEquals(networkContains(network, parseAddress("10.44.255.1")), true);
  assertEquals(networkContains(network, parseAddress("10.45.0.1")), false);
  assertEquals(networkContains(network, parseAddress("::ffff:10.44.1.1")), true);
  assertEquals(networkContains(network, parseAddress("2001:db8::1")), false);
  const v6 = parseNetwork("2001:db8::1");
  assertEquals(networkContains(v6, parseAddress("2001:db8::ffff:1")), true);
  assertEquals(networkContains(v6, parseAddress("2001:db8:0:1::1")), false);
});

Deno.test("per-address limits key IPv6 clients by their /64", () => {
  assertEquals(addressKey("10.1.2.3"), "10.1.2.3");
  assertEquals(addressKey("2001:db8::1"), "2001:db8::/64");
  assertEquals(addressKey("2001:db8::ffff:2"), "2001:db8::/64");
  assertEquals(addressKey("2001:db8:0:1::1"), "2001:db8:0:1::/64");
  assertEquals(normalizeAddress("::ffff:127.0.0.1"), "127.0.0.1");
  assertEquals(normalizeAddress("2001:DB8:0:0::1"), "2001:db8::1");
});

Deno.test("X-Forwarded-For is read only from trusted proxies, up to a hop that is no address", () => {
  const proxies = ["127.0.0.1", "10.0.0.9"];
  assertEquals(clientAddress("127.0.0.1", "203.0.113.7", proxies), "203.0.113.7");
  assertEquals(
    clientAddress("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.9", proxies),
    "203.0.113.7",
  );
  assertEquals(clientAddress("198.51.100.1", "203.0.113.7", proxies), "198.51.100.1");
  assertEquals(clientAddress("127.0.0.1", "junk", proxies), "127.0.0.1");
  // A client that sends many hops of its own cannot push the real one out of reach.
  const forged = Array.from({ length: 70 }, (_, i) => `10.66.0.${i}`).join(", ");
  assertEquals(clientAddress("127.0.0.1", `${forged}, 203.0.113.7`, proxies), "203.0.113.7");
  assertEquals(clientAddress("::ffff:127.0.0.1", "2001:DB8::1", proxies), "2001:db8::1");
});
