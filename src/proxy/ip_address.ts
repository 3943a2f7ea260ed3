/**
 * IP addresses as text and as numbers: the one parser behind the trusted
 * PROXY sources (cidr.ts), the PROXY header's addresses (proxy_protocol.ts)
 * and the per-address connection limit.
 *
 * @module
 */

/** The IPv4-mapped IPv6 block, `::ffff:0:0/96`, as the top 96 bits. */
export const IPV4_MAPPED = 0xffffn << 32n;

/**
 * Parses a dotted-quad IPv4 address strictly: four decimal parts of 0-255,
 * without leading zeros (which some parsers read as octal).
 *
 * @param text Such as `192.0.2.1`.
 * @returns the address as a 32-bit number, or undefined.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseIpv4 } from "./ip_address.ts";
 *
 * assertEquals(parseIpv4("10.0.0.1"), 0x0a000001n);
 * assertEquals(parseIpv4("10.0.0.01"), undefined);
 * ```
 */
export function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let bits = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    bits = (bits << 8n) | BigInt(p);
  }
  return bits;
}

/**
 * Parses an IPv6 address in any of its text forms (`::1`, `2001:db8::1`,
 * `::ffff:10.0.0.1`), without brackets or a zone.
 *
 * @param text The address.
 * @returns the address as a 128-bit number, or undefined.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseIpv6 } from "./ip_address.ts";
 *
 * assertEquals(parseIpv6("::1"), 1n);
 * assertEquals(parseIpv6("::ffff:10.0.0.1"), 0xffff0a000001n);
 * assertEquals(parseIpv6("1::2::3"), undefined);
 * ```
 */
export function parseIpv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return undefined;
  let host: string;
  try {
    // The URL parser knows IPv6 syntax, and writes an embedded IPv4 tail
    // in hex, so only hex groups and at most one "::" are left.
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head = "", tail] = host.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  let bits = 0n;
  for (const g of groups) bits = (bits << 16n) | BigInt(`0x${g}`);
  return bits;
}

/**
 * Writes a 128-bit address in IPv6's canonical text form (RFC 5952).
 *
 * @param bits The address.
 * @returns its text, such as `2001:db8::1`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatIpv6 } from "./ip_address.ts";
 *
 * assertEquals(formatIpv6(0x20010db8000000000000000000000001n), "2001:db8::1");
 * ```
 */
export function formatIpv6(bits: bigint): string {
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) {
    groups.push(((bits >> shift) & 0xffffn).toString(16));
  }
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/**
 * Reads an address of either family as 128 bits, an IPv4 one in its
 * IPv4-mapped form, so that `10.0.0.5` and `::ffff:10.0.0.5` are one
 * address however they were written.
 *
 * @param text An IPv4 or IPv6 address.
 * @returns the 128 bits, or undefined when `text` is neither.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { addressBits } from "./ip_address.ts";
 *
 * assertEquals(addressBits("10.0.0.5"), addressBits("::ffff:10.0.0.5"));
 * ```
 */
export function addressBits(text: string): bigint | undefined {
  const v4 = parseIpv4(text);
  return v4 !== undefined ? IPV4_MAPPED | v4 : parseIpv6(text);
}

/**
 * The key under which a client's connections are counted against a
 * per-address limit: an IPv4 address (mapped or not) is its own client; an
 * IPv6 address counts with every other address in its `/prefix` network,
 * since one subscriber usually holds a whole /64 and can pick any address
 * in it.
 *
 * @param host The client's address.
 * @param ipv6Prefix How many leading bits of an IPv6 address name a client.
 * @returns the key: the IPv4 address, or the IPv6 network as `net/prefix`;
 * text that is no address is returned as it is.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clientKey } from "./ip_address.ts";
 *
 * assertEquals(clientKey("2001:db8:1:2::7", 64), "2001:db8:1:2::/64");
 * assertEquals(clientKey("2001:db8:1:2:ffff::1", 64), "2001:db8:1:2::/64");
 * assertEquals(clientKey("::ffff:192.0.2.1", 64), "192.0.2.1");
 * assertEquals(clientKey("192.0.2.1", 64), "192.0.2.1");
 * ```
 */
export function clientKey(host: string, ipv6Prefix: number): string {
  const bits = addressBits(host);
  if (bits === undefined) return host;
  if (bits >> 32n === 0xffffn) {
    const v4 = bits & 0xffffffffn;
    return [24n, 16n, 8n, 0n].map((s) => (v4 >> s) & 0xffn).join(".");
  }
  const drop = BigInt(128 - ipv6Prefix);
  return `${formatIpv6((bits >> drop) << drop)}/${ipv6Prefix}`;
}
