/**
 * The one place that chooses between the kernels. The SIMD kernel runs only
 * on bytes that lie in its own WebAssembly memory
 * ({@linkcode simdMemory}), where the server's pooled read buffers are
 * carved; any other bytes (a caller's own array, a pool fallback once the
 * arena is used up, the stream API's chunks) take the SWAR kernel, which
 * gives the same result. {@linkcode kernelFallbacks} counts those.
 *
 * @module
 */
import { upcaseAsciiPrefix as swarPrefix } from "./ascii_scan.ts";
import { upcaseAsciiInPlace as swarInPlace } from "./ascii_upcase.ts";
import { upcaseSimdInPlace, upcaseSimdPrefix } from "./simd_upcase.ts";

export { simdMemory } from "./simd_upcase.ts";

const counts = { inPlace: 0, prefix: 0 };

/**
 * How many calls took the SWAR kernel because their bytes lay outside the
 * SIMD kernel's memory, since the process started: a server whose read
 * buffers come from the pool should see these stay near zero.
 *
 * @returns the counts, for {@linkcode upcaseAsciiInPlace} and {@linkcode upcaseAsciiPrefix}.
 */
export function kernelFallbacks(): { inPlace: number; prefix: number } {
  return { ...counts };
}

/**
 * Uppercases ASCII letters (a-z) in place and leaves every other byte as it
 * is, UTF-8 sequences included.
 *
 * @param bytes The bytes to change.
 * @returns `bytes`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { upcaseAsciiInPlace } from "./upcase_ascii.ts";
 *
 * const bytes = new TextEncoder().encode("hello, é");
 * assertEquals(new TextDecoder().decode(upcaseAsciiInPlace(bytes)), "HELLO, é");
 * ```
 */
export function upcaseAsciiInPlace(bytes: Uint8Array): Uint8Array {
  if (upcaseSimdInPlace(bytes)) return bytes;
  counts.inPlace++;
  return swarInPlace(bytes);
}

/**
 * Uppercases ASCII letters in place up to the first byte >= 0x80, and
 * leaves that one and the rest as they are.
 *
 * @param bytes The bytes to change.
 * @returns the index of the first byte >= 0x80, or `bytes.length`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { upcaseAsciiPrefix } from "./upcase_ascii.ts";
 *
 * const bytes = new TextEncoder().encode("abc é d");
 * assertEquals(upcaseAsciiPrefix(bytes), 4);
 * assertEquals(new TextDecoder().decode(bytes), "ABC é d");
 * ```
 */
export function upcaseAsciiPrefix(bytes: Uint8Array): number {
  const simd = upcaseSimdPrefix(bytes);
  if (simd >= 0) return simd;
  counts.prefix++;
  return swarPrefix(bytes);
}
