/**
 * Uppercases ASCII letters in place, byte by byte, the way Python's
 * `bytes.upper()` does: `a`–`z` become `A`–`Z` and every other byte is left
 * as it is, so binary data passes through safely.
 *
 * @param bytes The bytes to change in place.
 * @returns The same array, for chaining.
 *
 * @example Uppercase a buffer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { upcaseAsciiInPlace } from "./ascii_upcase.ts";
 *
 * const bytes = new TextEncoder().encode("hello, world\xff");
 * upcaseAsciiInPlace(bytes);
 * assertEquals(new TextDecoder().decode(bytes), "HELLO, WORLD\xff");
 * ```
 */
export function upcaseAsciiInPlace(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    // One unsigned compare covers the range 0x61..0x7a.
    if (b - 0x61 >>> 0 < 26) bytes[i] = b - 0x20;
  }
  return bytes;
}
