import { upcaseAsciiInPlace, upcaseAsciiPrefix } from "./upcase_ascii.ts";
import {
  upperCaseLongWords,
  upperCaseOf,
  upperCaseOfPair,
} from "./upper_case_of.ts";

/**
 * Most bytes out per byte in: `ΐ` (U+0390) and `ΰ` (U+03B0) are 2 bytes of
 * UTF-8 and uppercase to 3 code points, 6 bytes.
 */
const MAX_GROWTH = 3;
/**
 * The scratch output is kept for the next call up to this size: what the
 * largest read (64 KiB) and a carried partial character can grow to, and 6
 * spare bytes.
 */
const SCRATCH_KEEP = MAX_GROWTH * (64 * 1024 + 3) + 6;
let scratch = new Uint8Array(0);

/**
 * Decodes the UTF-8 sequence that starts at `bytes[i]`, a byte from 0xC2 to
 * 0xF4 (no other starts one), following the Unicode rules for well-formed
 * sequences (no overlongs, no surrogates, nothing above U+10FFFF), as
 * Python's decoder does.
 *
 * @returns `codePoint << 3 | length` when it is complete and valid (length
 * 2 to 4), 0 when it is a valid start cut off by the end of `bytes`, or -1
 * when the byte at `i` does not start a valid sequence.
 */
function decodeAt(bytes: Uint8Array, i: number): number {
  const lead = bytes[i]!;
  const n = bytes.length;
  if (i + 1 >= n) return 0;
  const b1 = bytes[i + 1]!;
  if (lead < 0xe0) {
    if ((b1 & 0xc0) !== 0x80) return -1;
    return ((lead & 0x1f) << 6 | (b1 & 0x3f)) << 3 | 2;
  }
  // The second byte's range is narrower after these leads: it is what
  // rules out overlongs, surrogates and code points above U+10FFFF.
  const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
  const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
  if (b1 < lo || b1 > hi) return -1;
  if (i + 2 >= n) return 0;
  const b2 = bytes[i + 2]!;
  if ((b2 & 0xc0) !== 0x80) return -1;
  if (lead < 0xf0) {
    return ((lead & 0x0f) << 12 | (b1 & 0x3f) << 6 | (b2 & 0x3f)) << 3 | 3;
  }
  if (i + 3 >= n) return 0;
  const b3 = bytes[i + 3]!;
  if ((b3 & 0xc0) !== 0x80) return -1;
  return ((lead & 0x07) << 18 | (b1 & 0x3f) << 12 | (b2 & 0x3f) << 6 |
        (b3 & 0x3f)) << 3 | 4;
}

/**
 * Maps `bytes` from `i` on in place, for as long as every character keeps
 * its length, which covers most text (`é` to `É`, and all that does not
 * change); then hands over to {@linkcode mapCopying}. ASCII is done already.
 */
function mapInPlace(
  bytes: Uint8Array,
  i: number,
): { output: Uint8Array; rest: number } {
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    // ASCII is done, and a byte that cannot start a sequence (a stray
    // continuation byte, C0, C1, F5 to FF) passes through as it is: one test
    // for both, so that invalid bytes cost what ASCII does.
    if (b - 0xc2 >>> 0 > 0xf4 - 0xc2) {
      i++;
      continue;
    }
    let upper: number;
    let length = 2;
    if (b < 0xe0 && i + 1 < n) {
      upper = upperCaseOfPair(b, bytes[i + 1]!);
    } else {
      const decoded = decodeAt(bytes, i);
      // A cut-off end waits for the next chunk.
      if (decoded === 0) return { output: bytes.subarray(0, i), rest: n - i };
      length = decoded & 7;
      upper = decoded < 0 ? -2 : upperCaseOf(decoded >>> 3);
    }
    // Below -1: a lead byte whose sequence is invalid, which passes through;
    // -1: a character that stays. (A test against an imported constant
    // measured 5% slower: V8 loads an import's value on every use.)
    if (upper < -1) {
      i++;
      continue;
    }
    if (upper >= 0) {
      if (upper >>> 24 !== length) return mapCopying(bytes, i);
      if (length === 4) {
        const head = upperCaseLongWords()[upper & 0xffffff]!;
        bytes[i] = head;
        bytes[i + 1] = head >> 8;
        bytes[i + 2] = head >> 16;
        bytes[i + 3] = head >> 24;
      } else {
        bytes[i] = upper;
        bytes[i + 1] = upper >> 8;
        if (length === 3) bytes[i + 2] = upper >> 16;
      }
    }
    i += length;
  }
  return { output: bytes, rest: 0 };
}

/**
 * Maps `bytes` from `from` on into a scratch buffer, then copies the output
 * into an array of exactly its length: a write that waits on a slow client
 * pins no more than it sends. ASCII is done already.
 */
function mapCopying(
  bytes: Uint8Array,
  from: number,
): { output: Uint8Array; rest: number } {
  const n = bytes.length;
  // An uppercase is written as 3 or 6 bytes, whatever its length; the next
  // one overwrites what is past its end, and 6 spare bytes take the last.
  const size = MAX_GROWTH * (n - from) + 6;
  let out = scratch;
  if (out.length < size) {
    out = new Uint8Array(size);
    if (size <= SCRATCH_KEEP) scratch = out;
  }
  // Two stores for 6 bytes, which measured a sixth faster than six for `ΐ`.
  const view = new DataView(out.buffer);
  let o = 0;
  let i = from;
  while (i < n) {
    const b = bytes[i]!;
    let upper = -2;
    let length = 2;
    if (b - 0xc2 >>> 0 < 0xe0 - 0xc2 && i + 1 < n) {
      upper = upperCaseOfPair(b, bytes[i + 1]!);
    } else if (b - 0xc2 >>> 0 <= 0xf4 - 0xc2) {
      const decoded = decodeAt(bytes, i);
      if (decoded === 0) break;
      if (decoded > 0) {
        length = decoded & 7;
        upper = upperCaseOf(decoded >>> 3);
      }
    }
    if (upper < -1) {
      // ASCII, or a byte that starts no valid sequence: as it is.
      out[o++] = b;
      i++;
      continue;
    }
    if (upper < 0) {
      for (let k = 0; k < length; k++) out[o + k] = bytes[i + k]!;
      o += length;
    } else if (upper >>> 24 <= 3) {
      out[o] = upper;
      out[o + 1] = upper >> 8;
      out[o + 2] = upper >> 16;
      o += upper >>> 24;
    } else {
      const words = upperCaseLongWords();
      const at = upper & 0xffffff;
      view.setInt32(o, words[at]!, true);
      view.setInt16(o + 4, words[at + 1]!, true);
      o += upper >>> 24;
    }
    i += length;
  }
  const output = new Uint8Array(from + o);
  output.set(bytes.subarray(0, from));
  output.set(out.subarray(0, o), from);
  return { output, rest: n - i };
}

/**
 * Uppercases the UTF-8 text in `bytes`, leaving bytes that are not valid
 * UTF-8 unchanged: the output is Python's
 * `data.decode("utf-8", "surrogateescape").upper().encode("utf-8",
 * "surrogateescape")`. Every character is kept, U+FEFF (the byte order
 * mark) too. A valid but unfinished sequence at the end is not consumed:
 * its length is returned as `rest`, so that a caller can prepend it to the
 * next chunk.
 *
 * The output is at most 3 times as long as the input (`ΐ`, 2 bytes, becomes
 * 6), and no array larger than it is made: it is `bytes` itself or a view
 * of it when no character changes length, else a new array of exactly its
 * length. The time taken is linear in the input, whatever its bytes.
 *
 * @param bytes The input; it is changed in place, and may be the output.
 * @returns the uppercased output and the length of the unfinished tail.
 *
 * @example Uppercase text that ends inside a character
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { upcaseUtf8 } from "./unicode_upcase.ts";
 *
 * const bytes = new TextEncoder().encode("abc straße 日");
 * const { output, rest } = upcaseUtf8(bytes.subarray(0, bytes.length - 1));
 * assertEquals(new TextDecoder().decode(output), "ABC STRASSE ");
 * assertEquals(rest, 2); // the first two of the three bytes of "日"
 * ```
 */
export function upcaseUtf8(
  bytes: Uint8Array,
): { output: Uint8Array; rest: number } {
  // Most text is ASCII, and an ASCII prefix needs no decoding: one pass
  // uppercases it and finds where it ends (in the SIMD kernel when the bytes
  // are in its memory).
  const start = upcaseAsciiPrefix(bytes);
  if (start === bytes.length) return { output: bytes, rest: 0 };
  // ASCII bytes never occur inside a multibyte sequence, so the rest of them
  // can be mapped first, in place, whatever surrounds them.
  const after = bytes.subarray(start);
  upcaseAsciiInPlace(after);
  return mapInPlace(bytes, start);
}

/**
 * Uppercases UTF-8 text that arrives in chunks, with full Unicode case
 * mapping (`straße` becomes `STRASSE`). A character split across two chunks
 * is joined before it is mapped. Bytes that are not valid UTF-8 pass through
 * unchanged, and so does an unfinished sequence at the end of the input.
 *
 * The output of a push of N bytes is at most 3 (N + 3) bytes: up to 3 bytes
 * of a character held back from the chunk before, and then 3 bytes out for
 * every byte in at most. Over a whole stream it is at most 3 times the input.
 *
 * ASCII-only chunks are changed in place: do not reuse a chunk after
 * passing it to {@linkcode Utf8Upcaser.push}.
 *
 * @example Uppercase text split inside a character
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Utf8Upcaser } from "./unicode_upcase.ts";
 *
 * const bytes = new TextEncoder().encode("straße ǆ café");
 * const upcaser = new Utf8Upcaser();
 * const decoder = new TextDecoder();
 * let text = decoder.decode(upcaser.push(bytes.slice(0, 5)), { stream: true }); // splits "ß"
 * text += decoder.decode(upcaser.push(bytes.slice(5)), { stream: true });
 * text += decoder.decode(upcaser.flush());
 * assertEquals(text, "STRASSE Ǆ CAFÉ");
 * ```
 */
export class Utf8Upcaser {
  #carry: Uint8Array | undefined;

  /**
   * Uppercases the next chunk.
   *
   * @param chunk The next bytes of the input.
   * @returns the output so far; it may be empty while a character is cut.
   */
  push(chunk: Uint8Array): Uint8Array {
    let input = chunk;
    if (this.#carry) {
      input = new Uint8Array(this.#carry.length + chunk.length);
      input.set(this.#carry);
      input.set(chunk, this.#carry.length);
      this.#carry = undefined;
    }
    const { output, rest } = upcaseUtf8(input);
    if (rest > 0) this.#carry = input.slice(input.length - rest);
    return output;
  }

  /**
   * Ends the input.
   *
   * @returns the unfinished sequence held back from the last chunk, as it
   * came, or an empty array.
   */
  flush(): Uint8Array {
    const carry = this.#carry ?? new Uint8Array(0);
    this.#carry = undefined;
    return carry;
  }
}
