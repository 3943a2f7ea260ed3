/**
 * Unit tests of parseRequestHead: what a strict HTTP/1.x reader takes, what
 * it answers with which status, and that it decides as early as it can.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { type HeadParse, parseRequestHead } from "./request_head.ts";

const encoder = new TextEncoder();

function parse(text: string, limits = {}): HeadParse {
  return parseRequestHead(encoder.encode(text), limits);
}

function errorOf(parsed: HeadParse): [number, string] | string {
  return parsed.status === "error"
    ? [parsed.code, parsed.reason]
    : parsed.status;
}

const PROBE = "GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:9090\r\n" +
  "User-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n\r\n";

Deno.test("parseRequestHead reads a kubelet probe's head and stops at the blank line", () => {
  const parsed = parse(`${PROBE}extra`);
  assertEquals(parsed, {
    status: "ok",
    length: PROBE.length,
    head: {
      method: "GET",
      target: "/healthz",
      version: "HTTP/1.1",
      headers: [
        ["host", "10.0.0.7:9090"],
        ["user-agent", "kube-probe/1.30"],
        ["accept", "*/*"],
        ["connection", "close"],
      ],
    },
  });
});

Deno.test("parseRequestHead says incomplete for every proper prefix of a head", () => {
  const bytes = encoder.encode(PROBE);
  for (let cut = 0; cut < bytes.length; cut++) {
    assertEquals(
      parseRequestHead(bytes.subarray(0, cut)).status,
      "incomplete",
      `cut at ${cut}`,
    );
  }
});

Deno.test("parseRequestHead takes bare LF line ends, leading blank lines, HTTP/1.0 without Host, and trims values", () => {
  const parsed = parse("\r\n\nHEAD /metrics?x=1 HTTP/1.0\nX-A:\t v \t\n\n");
  assertEquals(parsed.status === "ok" && parsed.head, {
    method: "HEAD",
    target: "/metrics?x=1",
    version: "HTTP/1.0",
    headers: [["x-a", "v"]],
  });
});

Deno.test("parseRequestHead takes absolute-form and asterisk targets, and any method token", () => {
  const absolute = parse("GET http://a:1/x HTTP/1.1\r\nHost: [::1]:1\r\n\r\n");
  assertEquals(
    absolute.status === "ok" && absolute.head.target,
    "http://a:1/x",
  );
  const options = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  assertEquals(options.status === "ok" && options.head.method, "OPTIONS");
});

Deno.test("parseRequestHead answers malformed heads with 400 and other major versions with 505", () => {
  const cases: [string, string][] = [
    ["GET  / HTTP/1.1\r\n\r\n", "malformed request line"],
    ["GET / HTTP/1.1 \r\n\r\n", "malformed request line"],
    ["GET /\r\n\r\n", "malformed request line"],
    ["G(T / HTTP/1.1\r\n\r\n", "malformed method"],
    ["GET / HTTP/1\r\n\r\n", "malformed HTTP version"],
    ["GET / http/1.1\r\n\r\n", "malformed HTTP version"],
    ["GET metrics HTTP/1.1\r\n\r\n", "malformed request target"],
    ["GET /a\x01 HTTP/1.1\r\n\r\n", "malformed request target"],
    ["GET /\xe9 HTTP/1.1\r\n\r\n", "malformed request target"],
    ["GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "malformed header"],
    ["GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed header"],
    ["GET / HTTP/1.1\r\n: a\r\n\r\n", "malformed header"],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", "malformed header value"],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", "folded header line"],
    ["GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", "bare CR in the head"],
    ["GET / HTTP/1.1\r\n\r\n", "missing Host header"],
    ["GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "malformed Host header"],
    ["GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", "malformed Host header"],
    ["GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "malformed Host header"],
    [
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "more than one Host header",
    ],
  ];
  for (const [text, reason] of cases) {
    assertEquals(errorOf(parse(text)), [400, reason], JSON.stringify(text));
  }
  assertEquals(errorOf(parse("GET / HTTP/2.0\r\n\r\n")), [
    505,
    "HTTP/2.0 is not supported",
  ]);
});

Deno.test("parseRequestHead rejects a bad request line before the head is complete", () => {
  // A client that sends a bad first line and then stalls is answered at
  // once, not at the header deadline.
  assertEquals(errorOf(parse("BREW /pot HTCPCP/1.0\r\n")), [
    400,
    "malformed HTTP version",
  ]);
});

Deno.test("parseRequestHead answers 414 past the request line limit, also before the line ends", () => {
  const limits = { maxLineLength: 64 };
  const long = `GET /${"a".repeat(64)} HTTP/1.1\r\nHost: a\r\n\r\n`;
  assertEquals(errorOf(parse(long, limits)), [
    414,
    "request line longer than 64 bytes",
  ]);
  assertEquals(errorOf(parse(`GET /${"a".repeat(70)}`, limits))[0], 414);
  const fits = `GET /${"a".repeat(49)} HTTP/1.1\r\nHost: a\r\n\r\n`;
  assertEquals(parse(fits, limits).status, "ok");
  // Blank lines before the request line count too, so they cannot go on
  // for ever.
  assertEquals(errorOf(parse("\r\n".repeat(40), limits))[0], 414);
});

Deno.test("parseRequestHead answers 431 past the head limit or the field count", () => {
  const field = `X-Pad: ${"p".repeat(100)}\r\n`;
  const big = `GET / HTTP/1.1\r\nHost: a\r\n${field.repeat(3)}\r\n`;
  assertEquals(errorOf(parse(big, { maxHeadLength: 300 })), [
    431,
    "head longer than 300 bytes",
  ]);
  assertEquals(parse(big, { maxHeadLength: 400 }).status, "ok");
  // An unfinished head over the limit is refused without waiting for more.
  assertEquals(
    errorOf(parse(big.slice(0, 320), { maxHeadLength: 300 }))[0],
    431,
  );
  const many = `GET / HTTP/1.1\r\nHost: a\r\n${"X: 1\r\n".repeat(4)}\r\n`;
  assertEquals(errorOf(parse(many, { maxHeaders: 4 })), [
    431,
    "more than 4 header fields",
  ]);
  assertEquals(parse(many, { maxHeaders: 5 }).status, "ok");
});

Deno.test("parseRequestHead keeps header bytes 0x80-0xFF as Latin-1 characters", () => {
  const bytes = new Uint8Array([
    ...encoder.encode("GET / HTTP/1.1\r\nHost: a\r\nX-Name: "),
    0xe9,
    ...encoder.encode("\r\n\r\n"),
  ]);
  const parsed = parseRequestHead(bytes);
  assertEquals(parsed.status === "ok" && parsed.head.headers[1], [
    "x-name",
    "\xe9",
  ]);
});
