const REASONS: Record<number, string> = {
  200: "OK",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

// Set here from the body and the connection's fate; whatever the handler
// put in them would be wrong.
const OWN_HEADERS = new Set([
  "connection",
  "content-length",
  "keep-alive",
  "transfer-encoding",
]);

const encoder = new TextEncoder();

/**
 * The standard reason phrase of a status code, or an empty one (which HTTP
 * allows) for a code without one here.
 *
 * @param status The status code.
 * @returns its reason phrase.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { reasonPhrase } from "./response_bytes.ts";
 *
 * assertEquals(reasonPhrase(431), "Request Header Fields Too Large");
 * ```
 */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

/** Options for {@linkcode httpResponseBytes}. */
export interface ResponseBytesOptions {
  /** Leave the body out, as the answer to a HEAD request. */
  head?: boolean;
  /**
   * The time for the `Date` header.
   *
   * @default {new Date()}
   */
  date?: Date;
}

/**
 * Writes a `Response` out as HTTP/1.1 bytes for a connection that closes
 * after it: the whole body with its `Content-Length`, `Connection: close`,
 * and a `Date`. For a HEAD request the length is the GET body's, and the
 * body is left out.
 *
 * @param response What the handler answered.
 * @param options Whether the request was HEAD, and the date.
 * @returns the status line, the header fields and the body.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { httpResponseBytes } from "./response_bytes.ts";
 *
 * const bytes = await httpResponseBytes(new Response("ok"), {
 *   date: new Date(0),
 * });
 * assertEquals(
 *   new TextDecoder().decode(bytes),
 *   "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\n" +
 *     "date: Thu, 01 Jan 1970 00:00:00 GMT\r\ncontent-length: 2\r\n" +
 *     "connection: close\r\n\r\nok",
 * );
 * ```
 */
export async function httpResponseBytes(
  response: Response,
  options: ResponseBytesOptions = {},
): Promise<Uint8Array> {
  const { head = false, date = new Date() } = options;
  const body = new Uint8Array(await response.arrayBuffer());
  // These statuses never carry a body, nor a length for one.
  const bodiless = response.status === 204 || response.status === 304;
  const lines = [
    `HTTP/1.1 ${response.status} ${
      response.statusText || reasonPhrase(response.status)
    }`,
  ];
  for (const [name, value] of response.headers) {
    if (!OWN_HEADERS.has(name)) lines.push(`${name}: ${value}`);
  }
  if (!response.headers.has("date")) lines.push(`date: ${date.toUTCString()}`);
  if (!bodiless) lines.push(`content-length: ${body.length}`);
  lines.push("connection: close", "", "");
  const top = encoder.encode(lines.join("\r\n"));
  if (head || bodiless) return top;
  const out = new Uint8Array(top.length + body.length);
  out.set(top);
  out.set(body, top.length);
  return out;
}
