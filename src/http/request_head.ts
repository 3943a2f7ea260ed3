/** An HTTP/1.x request line and its header fields, as they arrived. */
export interface RequestHead {
  /** The method, case-sensitive as HTTP has it: `GET`, `HEAD`, … */
  method: string;
  /** The request target: `/path?query`, `http://host/path`, or `*`. */
  target: string;
  /** The protocol version. */
  version: "HTTP/1.0" | "HTTP/1.1";
  /** The header fields in order, names lowercased, values trimmed. */
  headers: [string, string][];
}

/** A status that {@linkcode parseRequestHead} answers a bad request with. */
export type HeadErrorStatus = 400 | 414 | 431 | 505;

/** The outcome of {@linkcode parseRequestHead}. */
export type HeadParse =
  | { status: "incomplete" }
  | {
    status: "ok";
    head: RequestHead;
    /** How many bytes the head took, the blank line included. */
    length: number;
  }
  | { status: "error"; code: HeadErrorStatus; reason: string };

/** Limits for {@linkcode parseRequestHead}. */
export interface RequestHeadLimits {
  /**
   * Longest request line in bytes; a longer one is answered 414.
   *
   * @default {8192}
   */
  maxLineLength?: number;
  /**
   * Longest head in bytes, request line and fields together; a longer one
   * is answered 431, as HAProxy does past its 16 KiB buffer.
   *
   * @default {16384}
   */
  maxHeadLength?: number;
  /**
   * Most header fields; more are answered 431.
   *
   * @default {100}
   */
  maxHeaders?: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VERSION = /^HTTP\/(\d)\.(\d)$/;
// Visible ASCII only: a target with spaces or controls is malformed.
const TARGET = /^(?:\/[\x21-\x7e]*|https?:\/\/[\x21-\x7e]+|\*)$/;
// A field value may hold tabs and bytes 0x80-0xFF (obs-text), but no other
// control characters.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// A host name or IPv4 address (reg-name characters), or a bracketed IPv6
// literal, with an optional port.
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::\d*)?$/;
const LF = 0x0a;

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}

function fail(code: HeadErrorStatus, reason: string): HeadParse {
  return { status: "error", code, reason };
}

/** One line without its LF and an optional CR before it; null for a bare CR. */
function lineText(bytes: Uint8Array): string | null {
  const text = latin1(bytes);
  const body = text.endsWith("\r") ? text.slice(0, -1) : text;
  return body.includes("\r") ? null : body;
}

function parseRequestLine(line: string): RequestHead | HeadParse {
  const parts = line.split(" ");
  if (parts.length !== 3) return fail(400, "malformed request line");
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) return fail(400, "malformed method");
  const v = VERSION.exec(version);
  if (!v) return fail(400, "malformed HTTP version");
  if (v[1] !== "1") return fail(505, `${version} is not supported`);
  if (!TARGET.test(target)) return fail(400, "malformed request target");
  const minor = v[2] === "0" ? "HTTP/1.0" : "HTTP/1.1";
  return { method, target, version: minor, headers: [] };
}

function parseField(line: string): [string, string] | HeadParse {
  // A folded line continues the one before; RFC 9112 lets a server refuse it.
  if (line.startsWith(" ") || line.startsWith("\t")) {
    return fail(400, "folded header line");
  }
  const colon = line.indexOf(":");
  const name = line.slice(0, colon);
  // No space before the colon either: RFC 9112 section 5.1 requires a 400.
  if (colon <= 0 || !TOKEN.test(name)) return fail(400, "malformed header");
  const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
  if (!FIELD_VALUE.test(value)) return fail(400, "malformed header value");
  return [name.toLowerCase(), value];
}

function checkHost(head: RequestHead): HeadParse | undefined {
  const hosts = head.headers.filter(([name]) => name === "host");
  if (hosts.length > 1) return fail(400, "more than one Host header");
  // HTTP/1.1 requires it (RFC 9112 section 3.2), as Go's net/http checks.
  if (hosts.length === 0 && head.version === "HTTP/1.1") {
    return fail(400, "missing Host header");
  }
  if (hosts[0] && !HOST.test(hosts[0][1])) {
    return fail(400, "malformed Host header");
  }
  return undefined;
}

/**
 * Parses an HTTP/1.x request head (the request line and the header fields,
 * up to the blank line) from the bytes received so far, strictly: a
 * malformed line is a 400 as soon as it is complete, a request line over
 * the limit a 414, a head over the limit a 431, a version other than 1.x a
 * 505. Lines may end in CRLF or a bare LF, and empty lines before the
 * request line are skipped, as RFC 9112 asks. It does not read bodies.
 *
 * @param bytes Everything received on the connection so far.
 * @param limits The size limits.
 * @returns the head and its length, `incomplete`, or the error to answer.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseRequestHead } from "./request_head.ts";
 *
 * const bytes = new TextEncoder().encode("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
 * const parsed = parseRequestHead(bytes);
 * assertEquals(parsed.status === "ok" && parsed.head.target, "/metrics");
 * assertEquals(parseRequestHead(bytes.subarray(0, 20)).status, "incomplete");
 * ```
 */
export function parseRequestHead(
  bytes: Uint8Array,
  limits: RequestHeadLimits = {},
): HeadParse {
  const {
    maxLineLength = 8192,
    maxHeadLength = 16384,
    maxHeaders = 100,
  } = limits;
  let start = 0;
  let head: RequestHead | undefined;
  for (;;) {
    const end = bytes.indexOf(LF, start);
    const limit = head ? maxHeadLength : maxLineLength;
    if (end < 0 ? bytes.length > limit : end > limit) {
      return head
        ? fail(431, `head longer than ${maxHeadLength} bytes`)
        : fail(414, `request line longer than ${maxLineLength} bytes`);
    }
    if (end < 0) return { status: "incomplete" };
    const line = lineText(bytes.subarray(start, end));
    start = end + 1;
    if (line === null) return fail(400, "bare CR in the head");
    if (!head) {
      if (line === "") continue;
      const parsed = parseRequestLine(line);
      if ("status" in parsed) return parsed;
      head = parsed;
    } else if (line === "") {
      return checkHost(head) ?? { status: "ok", head, length: start };
    } else {
      if (head.headers.length === maxHeaders) {
        return fail(431, `more than ${maxHeaders} header fields`);
      }
      const field = parseField(line);
      if (!Array.isArray(field)) return field;
      head.headers.push(field);
    }
  }
}
