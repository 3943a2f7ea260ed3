/**
 * A set of IP address ranges in CIDR notation, such as the sources trusted
 * to send a PROXY protocol header.
 *
 * @module
 */

/** One range: the address as bits, and how many leading bits must match. */
interface Range {
  bits: bigint;
  prefix: number;
  width: 32 | 128;
}

function ipv4Bits(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let bits = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    bits = (bits << 8n) | BigInt(p);
  }
  return bits;
}

function ipv6Bits(text: string): bigint | undefined {
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  // The URL parser writes an embedded IPv4 tail in hex, so only hex groups
  // and one "::" are left.
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

/** An address as bits, with IPv4-mapped IPv6 addresses read as IPv4. */
function addressBits(
  text: string,
): { bits: bigint; width: 32 | 128 } | undefined {
  const v4 = ipv4Bits(text);
  if (v4 !== undefined) return { bits: v4, width: 32 };
  const v6 = ipv6Bits(text);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { bits: v6 & 0xffffffffn, width: 32 };
  return { bits: v6, width: 128 };
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
    const parsed = address.includes(":")
      ? { bits: ipv6Bits(address), width: 128 as const }
      : { bits: ipv4Bits(address), width: 32 as const };
    const prefix = prefixText === undefined
      ? parsed.width
      : /^(0|[1-9][0-9]{0,2})$/.test(prefixText)
      ? Number(prefixText)
      : NaN;
    if (
      parsed.bits === undefined || extra !== undefined ||
      !(prefix >= 0 && prefix <= parsed.width)
    ) {
      return `"${entry}" is not an IP address or CIDR range (such as 10.0.0.0/8 or ::1/128)`;
    }
    ranges.push({ bits: parsed.bits, prefix, width: parsed.width });
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
    const a = addressBits(address);
    if (!a) return false;
    return this.#ranges.some((r) => {
      if (r.width !== a.width) {
        // An IPv4 range also matches its IPv4-mapped IPv6 form, handled
        // above; an IPv6 range never matches an IPv4 address.
        return false;
      }
      const shift = BigInt(r.width - r.prefix);
      return (a.bits >> shift) === (r.bits >> shift);
    });
  }
}
