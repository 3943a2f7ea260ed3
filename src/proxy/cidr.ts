/**
 * A set of IP address ranges in CIDR notation, such as the sources trusted
 * to send a PROXY protocol header.
 *
 * @module
 */
import {
  addressBits,
  IPV4_MAPPED,
  parseIpv4,
  parseIpv6,
} from "./ip_address.ts";

/**
 * One range, in IPv6's 128 bits: an IPv4 range is kept as its IPv4-mapped
 * form (`10.0.0.0/8` as `::ffff:10.0.0.0/104`), so that an entry and an
 * address match however each was written.
 */
interface Range {
  bits: bigint;
  prefix: number;
}

/**
 * Parses a comma-separated list of CIDR ranges (`127.0.0.0/8,::1/128`). A
 * bare address is a range of one.
 *
 * @param text The list.
 * @returns the ranges, or a message that quotes the first bad entry.
 */
function parseRanges(text: string): Range[] | string {
  const ranges: Range[] = [];
  for (const entry of text.split(",").map((e) => e.trim())) {
    const [address = "", prefixText, extra] = entry.split("/");
    const v6 = address.includes(":");
    const bits = v6 ? parseIpv6(address) : parseIpv4(address);
    const width = v6 ? 128 : 32;
    const prefix = prefixText === undefined
      ? width
      : /^(0|[1-9][0-9]{0,2})$/.test(prefixText)
      ? Number(prefixText)
      : NaN;
    if (
      bits === undefined || extra !== undefined ||
      !(prefix >= 0 && prefix <= width)
    ) {
      return `"${entry}" is not an IP address or CIDR range (such as 10.0.0.0/8 or ::1/128)`;
    }
    ranges.push(
      v6 ? { bits, prefix } : { bits: IPV4_MAPPED | bits, prefix: 96 + prefix },
    );
  }
  return ranges;
}

/**
 * A list of CIDR ranges that answers whether an address is in one of them.
 *
 * @example
 * ```ts
 * import { assert, assertThrows } from "@std/assert";
 * import { CidrSet } from "./cidr.ts";
 *
 * const trusted = CidrSet.parse("127.0.0.0/8,10.1.0.0/16,::1");
 * assert(trusted.has("127.0.0.5"));
 * assert(trusted.has("::ffff:10.1.2.3"));
 * assert(!trusted.has("10.2.0.1"));
 * // An entry written in its IPv4-mapped form matches the IPv4 address.
 * assert(CidrSet.parse("::ffff:10.0.0.5").has("10.0.0.5"));
 * assertThrows(() => CidrSet.parse("10.0.0.0/33"), TypeError, "10.0.0.0/33");
 * ```
 */
export class CidrSet {
  readonly #ranges: Range[];

  private constructor(ranges: Range[]) {
    this.#ranges = ranges;
  }

  /**
   * Parses a comma-separated list of ranges.
   *
   * @param text Such as `127.0.0.0/8,::1/128`.
   * @returns the set.
   * @throws {TypeError} naming the first entry that is not a range.
   */
  static parse(text: string): CidrSet {
    const ranges = parseRanges(text);
    if (typeof ranges === "string") throw new TypeError(ranges);
    return new CidrSet(ranges);
  }

  /**
   * Tells whether an address is in one of the ranges.
   *
   * @param address An IPv4 or IPv6 address, as text.
   * @returns true if a range holds it.
   */
  has(address: string): boolean {
    const bits = addressBits(address);
    if (bits === undefined) return false;
    return this.#ranges.some((r) => {
      const shift = BigInt(128 - r.prefix);
      return (bits >> shift) === (r.bits >> shift);
    });
  }
}
