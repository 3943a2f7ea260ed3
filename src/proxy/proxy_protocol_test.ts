import { assertEquals } from "@std/assert";
import {
  parseProxyHeader,
  type ProxyParse,
  V1_MAX_LENGTH,
} from "./proxy_protocol.ts";

const text = (s: string) => new TextEncoder().encode(s);
const SIGNATURE = [
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
];

/** A v2 header: signature, version/command, family/protocol, length, body. */
function v2(
  verCmd: number,
  famProto: number,
  body: number[],
  length = body.length,
) {
  return new Uint8Array([
    ...SIGNATURE,
    verCmd,
    famProto,
    length >> 8,
    length & 0xff,
    ...body,
  ]);
}
const be16 = (n: number) => [n >> 8, n & 0xff];
const TCP4_BODY = [192, 0, 2, 1, 198, 51, 100, 2, ...be16(56324), ...be16(443)];
const TCP6_BODY = [
  0x20,
  0x01,
  0x0d,
  0xb8,
  ...Array(11).fill(0),
  0x01,
  0x20,
  0x01,
  0x0d,
  0xb8,
  ...Array(11).fill(0),
  0x02,
  ...be16(1),
  ...be16(65535),
];

function ok(result: ProxyParse) {
  if (result.status !== "ok") {
    throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  }
  return result;
}

function assertIncompleteUntilWhole(bytes: Uint8Array) {
  for (let n = 0; n < bytes.length; n++) {
    assertEquals(
      parseProxyHeader(bytes.subarray(0, n)).status,
      "incomplete",
      `prefix of ${n} bytes`,
    );
  }
}

Deno.test("parseProxyHeader reads v1 TCP4 and TCP6 headers and where the data starts", () => {
  const line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  const r4 = ok(parseProxyHeader(text(line + "payload")));
  assertEquals(r4.length, line.length);
  assertEquals(r4.header, {
    version: 1,
    command: "proxy",
    source: { hostname: "192.0.2.1", port: 56324 },
    destination: { hostname: "198.51.100.2", port: 443 },
  });
  assertIncompleteUntilWhole(text(line));
  const r6 = ok(
    parseProxyHeader(
      text("PROXY TCP6 2001:DB8:0:0::1 ::ffff:192.0.2.1 0 65535\r\n"),
    ),
  );
  assertEquals(r6.header.source, { hostname: "2001:db8::1", port: 0 });
  assertEquals(r6.header.destination, {
    hostname: "::ffff:c000:201",
    port: 65535,
  });
});

Deno.test("parseProxyHeader takes the longest v1 header, 107 bytes, and no longer", () => {
  const ffff = Array(8).fill("ffff").join(":");
  const longest = `PROXY TCP6 ${ffff} ${ffff} 65535 65535\r\n`;
  assertEquals(longest.length <= V1_MAX_LENGTH, true);
  assertEquals(ok(parseProxyHeader(text(longest))).length, longest.length);
  const tooLong = "PROXY UNKNOWN " + "x".repeat(V1_MAX_LENGTH);
  assertEquals(parseProxyHeader(text(tooLong)).status, "invalid");
  assertEquals(
    parseProxyHeader(text(tooLong.slice(0, V1_MAX_LENGTH - 1))).status,
    "incomplete",
  );
});

Deno.test("parseProxyHeader treats v1 UNKNOWN as the connection's own addresses", () => {
  for (
    const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"]
  ) {
    const r = ok(parseProxyHeader(text(line)));
    assertEquals(r.header, { version: 1, command: "local" });
    assertEquals(r.length, line.length);
  }
});

Deno.test("parseProxyHeader rejects malformed v1 headers", () => {
  const bad = [
    "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n", // LF without CR
    "PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n", // two spaces
    "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n", // a field missing
    "PROXY TCP4 256.0.2.1 198.51.100.2 56324 443\r\n",
    "PROXY TCP4 192.0.02.1 198.51.100.2 56324 443\r\n", // leading zero
    "PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n", // v6 in TCP4
    "PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n", // v4 in TCP6
    "PROXY TCP4 192.0.2.1 198.51.100.2 065 443\r\n",
    "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
    "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
    "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
    "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
    "GET / HTTP/1.1\r\n",
    "\x00\x01\x02",
  ];
  for (const line of bad) {
    assertEquals(
      parseProxyHeader(text(line)).status,
      "invalid",
      JSON.stringify(line),
    );
  }
});

Deno.test("parseProxyHeader reads v2 PROXY over TCP4 and TCP6, skipping TLVs", () => {
  const tlvs = [0x04, ...be16(3), 0, 0, 0, 0x01, ...be16(2), 0x68, 0x32];
  const h4 = v2(0x21, 0x11, [...TCP4_BODY, ...tlvs]);
  const r4 = ok(parseProxyHeader(new Uint8Array([...h4, 0x61, 0x62])));
  assertEquals(r4.length, h4.length);
  assertEquals(r4.header, {
    version: 2,
    command: "proxy",
    source: { hostname: "192.0.2.1", port: 56324 },
    destination: { hostname: "198.51.100.2", port: 443 },
  });
  assertIncompleteUntilWhole(h4);
  const r6 = ok(parseProxyHeader(v2(0x21, 0x21, TCP6_BODY)));
  assertEquals(r6.header.source, { hostname: "2001:db8::1", port: 1 });
  assertEquals(r6.header.destination, { hostname: "2001:db8::2", port: 65535 });
});

Deno.test("parseProxyHeader treats v2 LOCAL, UNSPEC, UDP and UNIX as the connection's own addresses", () => {
  const local = [
    v2(0x20, 0x11, TCP4_BODY), // LOCAL, addresses ignored
    v2(0x20, 0x00, []), // LOCAL, UNSPEC
    v2(0x21, 0x12, TCP4_BODY), // PROXY over UDP
    v2(0x21, 0x31, Array(216).fill(0)), // PROXY over a Unix socket
  ];
  for (const header of local) {
    const r = ok(parseProxyHeader(header));
    assertEquals(r.header, { version: 2, command: "local" });
    assertEquals(r.length, header.length);
  }
});

Deno.test("parseProxyHeader rejects malformed v2 headers", () => {
  const bad = [
    v2(0x11, 0x11, TCP4_BODY), // version 1 in a v2 header
    v2(0x22, 0x11, TCP4_BODY), // command 2
    v2(0x21, 0x41, TCP4_BODY), // family 4
    v2(0x21, 0x13, TCP4_BODY), // protocol 3
    v2(0x21, 0x11, TCP4_BODY.slice(0, 8)), // too short for TCP4
    v2(0x21, 0x21, TCP4_BODY), // too short for TCP6
    v2(0x21, 0x11, [...TCP4_BODY, 0x04, ...be16(9), 0]), // TLV overruns
    v2(0x21, 0x11, [...TCP4_BODY, 0x04]), // TLV header cut short
  ];
  for (const header of bad) {
    assertEquals(
      parseProxyHeader(header).status,
      "invalid",
      String([...header.subarray(12, 16)]),
    );
  }
  const wrongSignature = v2(0x21, 0x11, TCP4_BODY);
  wrongSignature[7] = 0x50;
  assertEquals(parseProxyHeader(wrongSignature).status, "invalid");
});
