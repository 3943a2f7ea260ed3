/**
 * A parser for the PROXY protocol header that load balancers (HAProxy,
 * nginx, Envoy, cloud balancers) put in front of a proxied TCP stream, in
 * both versions, parsed strictly as HAProxy's doc/proxy-protocol.txt says.
 *
 * @module
 */
import { formatIpv6, parseIpv4, parseIpv6 } from "./ip_address.ts";

/** An address and port from a PROXY header. */
export interface ProxyAddress {
  /** The IP address, in its usual text form. */
  hostname: string;
  /** The port. */
  port: number;
}

/** What a complete, valid header says. */
export interface ProxyHeader {
  /** 1 or 2. */
  version: 1 | 2;
  /**
   * `proxy`: the addresses are the real client's and the address it reached.
   * `local`: the balancer's own connection (a health check, say): use the
   * connection's own addresses.
   */
  command: "proxy" | "local";
  /** The real client, when the header names one (TCP over IPv4 or IPv6). */
  source?: ProxyAddress;
  /** The address the client connected to. */
  destination?: ProxyAddress;
}

/** The outcome of {@linkcode parseProxyHeader}. */
export type ProxyParse =
  | { status: "incomplete" }
  | { status: "invalid"; reason: string }
  | { status: "ok"; header: ProxyHeader; length: number };

/** The longest v1 header, CRLF included. */
export const V1_MAX_LENGTH = 107;

const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
const V2_FIXED = 16;

function invalid(reason: string): ProxyParse {
  return { status: "invalid", reason };
}

/** Whether `bytes` could still turn into `prefix` as more bytes arrive. */
function startsLike(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/**
 * Parses the PROXY header at the start of a connection's first bytes.
 *
 * @param bytes What has arrived so far.
 * @returns `incomplete` while more bytes could still make a valid header,
 * `invalid` with a reason once they cannot, or the header and its length in
 * bytes; the client's own data starts right after it.
 *
 * @example Both versions
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseProxyHeader } from "./proxy_protocol.ts";
 *
 * const v1 = new TextEncoder().encode("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nhello");
 * const parsed = parseProxyHeader(v1);
 * assertEquals(parsed.status === "ok" && parsed.header.source, { hostname: "192.0.2.1", port: 56324 });
 * assertEquals(parsed.status === "ok" && parsed.length, 45);
 * assertEquals(parseProxyHeader(v1.subarray(0, 10)).status, "incomplete");
 * assertEquals(parseProxyHeader(new TextEncoder().encode("GET / HTTP/1.1\r\n")).status, "invalid");
 * ```
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  if (bytes.length === 0) return { status: "incomplete" };
  if (startsLike(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_FIXED ? { status: "incomplete" } : parseV2(bytes);
  }
  if (startsLike(bytes, V1_PREFIX)) return parseV1(bytes);
  return invalid("the connection did not start with a PROXY header");
}

function parseV1(bytes: Uint8Array): ProxyParse {
  const limit = Math.min(bytes.length, V1_MAX_LENGTH);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    if (bytes[i] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    return bytes.length >= V1_MAX_LENGTH
      ? invalid(`v1 header longer than ${V1_MAX_LENGTH} bytes`)
      : { status: "incomplete" };
  }
  if (bytes[end - 1] !== 0x0d) return invalid("v1 header not ended by CRLF");
  const line = new TextDecoder("latin1").decode(bytes.subarray(0, end - 1));
  const length = end + 1;
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") {
    // The sender could not tell the addresses; whatever follows is ignored.
    return { status: "ok", header: { version: 1, command: "local" }, length };
  }
  if (parts.length !== 6) return invalid("v1 header does not have 6 fields");
  const [, family, src, dst, sport, dport] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const parseIp = family === "TCP4"
    ? ipv4Text
    : family === "TCP6"
    ? ipv6Text
    : undefined;
  if (!parseIp) {
    return invalid(`v1 protocol "${family}" is not TCP4, TCP6 or UNKNOWN`);
  }
  const source = parseIp(src);
  const destination = parseIp(dst);
  const sourcePort = parsePortText(sport);
  const destinationPort = parsePortText(dport);
  if (source === undefined || destination === undefined) {
    return invalid(`v1 address is not a valid ${family} address`);
  }
  if (sourcePort === undefined || destinationPort === undefined) {
    return invalid("v1 port is not a number in 0-65535");
  }
  return {
    status: "ok",
    header: {
      version: 1,
      command: "proxy",
      source: { hostname: source, port: sourcePort },
      destination: { hostname: destination, port: destinationPort },
    },
    length,
  };
}

function parsePortText(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

// The text of a valid address, as the header wrote it for IPv4 and in the
// canonical form for IPv6.
function ipv4Text(text: string): string | undefined {
  return parseIpv4(text) === undefined ? undefined : text;
}

function ipv6Text(text: string): string | undefined {
  const bits = parseIpv6(text);
  return bits === undefined ? undefined : formatIpv6(bits);
}

function parseV2(bytes: Uint8Array): ProxyParse {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const verCmd = bytes[12]!;
  if (verCmd >> 4 !== 2) return invalid(`v2 version ${verCmd >> 4} is not 2`);
  const command = verCmd & 0x0f;
  if (command > 1) {
    return invalid(`v2 command ${command} is not LOCAL or PROXY`);
  }
  const famProto = bytes[13]!;
  const family = famProto >> 4;
  const protocol = famProto & 0x0f;
  if (family > 3) return invalid(`v2 address family ${family} is unknown`);
  if (protocol > 2) {
    return invalid(`v2 transport protocol ${protocol} is unknown`);
  }
  const addressLength = view.getUint16(14);
  const length = V2_FIXED + addressLength;
  if (bytes.length < length) return { status: "incomplete" };
  const needed = [0, 12, 36, 216][family]!;
  if (addressLength < needed) {
    return invalid(`v2 length ${addressLength} is too short for its addresses`);
  }
  // TLVs fill the rest; each must fit, and is skipped by its length.
  for (let at = V2_FIXED + needed; at < length;) {
    if (at + 3 > length) return invalid("v2 TLV header cut short");
    at += 3 + view.getUint16(at + 1);
    if (at > length) return invalid("v2 TLV longer than the header");
  }
  // LOCAL, and anything but TCP, tells nothing about the real client.
  if (command === 0 || protocol !== 1 || family === 0 || family === 3) {
    return { status: "ok", header: { version: 2, command: "local" }, length };
  }
  let source: ProxyAddress;
  let destination: ProxyAddress;
  if (family === 1) {
    source = {
      hostname: bytes.subarray(16, 20).join("."),
      port: view.getUint16(24),
    };
    destination = {
      hostname: bytes.subarray(20, 24).join("."),
      port: view.getUint16(26),
    };
  } else {
    source = { hostname: ipv6At(view, 16), port: view.getUint16(48) };
    destination = { hostname: ipv6At(view, 32), port: view.getUint16(50) };
  }
  return {
    status: "ok",
    header: { version: 2, command: "proxy", source, destination },
    length,
  };
}

function ipv6At(view: DataView, at: number): string {
  const bits = (view.getBigUint64(at) << 64n) | view.getBigUint64(at + 8);
  return formatIpv6(bits);
}
