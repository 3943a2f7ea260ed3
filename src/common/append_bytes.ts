/**
 * Joins what was received so far with the next read, for a reader that
 * collects a short head (an HTTP request head, a PROXY header) before it
 * can parse it.
 *
 * @param received The bytes so far.
 * @param more The bytes just read.
 * @returns a new array with both.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { appendBytes } from "./append_bytes.ts";
 *
 * assertEquals(appendBytes(new Uint8Array([1]), new Uint8Array([2, 3])), new Uint8Array([1, 2, 3]));
 * ```
 */
export function appendBytes(
  received: Uint8Array,
  more: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(received.length + more.length);
  next.set(received);
  next.set(more, received.length);
  return next;
}
