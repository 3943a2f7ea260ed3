// The word loops here are ascii_upcase.ts's, with a stop at the first word
// that has a byte >= 0x80; see there for the measurements behind these limits
// and the cached view.
const WORD_MIN = 32;
const SMALL_MAX = 1024;

let cachedBuffer: ArrayBufferLike | undefined;
let cachedWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

/**
 * Uppercases ASCII letters in place up to the first byte >= 0x80, four bytes
 * at a time, and tells where that byte is. Mostly-ASCII text can then skip
 * decoding up to there. Nothing from that byte on is changed.
 *
 * @param bytes The bytes to change in place.
 * @returns the index of the first byte >= 0x80, or `bytes.length` if none.
 *
 * @example Uppercase up to the first non-ASCII byte
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { upcaseAsciiPrefix } from "./ascii_scan.ts";
 *
 * const bytes = new TextEncoder().encode("abc é d");
 * assertEquals(upcaseAsciiPrefix(bytes), 4);
 * assertEquals(new TextDecoder().decode(bytes), "ABC é d");
 * ```
 */
export function upcaseAsciiPrefix(bytes: Uint8Array): number {
  const length = bytes.length;
  let i = 0;
  if (length >= WORD_MIN) {
    const offset = bytes.byteOffset;
    const head = -offset & 3;
    for (; i < head; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return i;
      if (b - 0x61 >>> 0 < 26) bytes[i] = b - 0x20;
    }
    const buffer = bytes.buffer;
    // Either way, the byte loop below goes on from the first word not done:
    // the tail, or the word holding the first byte >= 0x80, which it finds.
    if (length < SMALL_MAX && buffer.byteLength <= 0x7fffffff) {
      const first = (offset + head) >>> 2;
      const end = first + ((length - head) >>> 2);
      if (buffer !== cachedBuffer || end > cachedWords.length) {
        cachedWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
        cachedBuffer = buffer;
      }
      let w = first;
      for (; w < end; w++) {
        const word = cachedWords[w]!;
        if ((word & 0x80808080) !== 0) break;
        cachedWords[w] = upcaseWord(word);
      }
      i = head + (w - first) * 4;
    } else {
      const count = Math.floor((length - head) / 4);
      i = head +
        upcaseAsciiWords(new Int32Array(buffer, offset + head, count)) * 4;
    }
  }
  for (; i < length; i++) {
    const b = bytes[i]!;
    if (b >= 0x80) return i;
    if (b - 0x61 >>> 0 < 26) bytes[i] = b - 0x20;
  }
  return length;
}

/** Returns the index of the first word not done. */
function upcaseAsciiWords(words: Int32Array): number {
  const length = words.length;
  let i = 0;
  for (const end4 = length & ~3; i < end4; i += 4) {
    const w0 = words[i]!;
    const w1 = words[i + 1]!;
    const w2 = words[i + 2]!;
    const w3 = words[i + 3]!;
    // One test for four words keeps the cost of the stop low; nothing of a
    // round that fails it is written.
    if (((w0 | w1 | w2 | w3) & 0x80808080) !== 0) break;
    words[i] = upcaseWord(w0);
    words[i + 1] = upcaseWord(w1);
    words[i + 2] = upcaseWord(w2);
    words[i + 3] = upcaseWord(w3);
  }
  for (; i < length; i++) {
    const w = words[i]!;
    if ((w & 0x80808080) !== 0) break;
    words[i] = upcaseWord(w);
  }
  return i;
}

/**
 * Uppercases the four bytes of `w`, all < 0x80: the formula of
 * ascii_upcase.ts, less the masking that only bytes >= 0x80 need. Each lane
 * is at most 0x7f, so `w + 0x1f1f1f1f` (top bit set iff the byte is >= 0x61)
 * and `w + 0x05050505` (iff >= 0x7b) carry into no other lane.
 */
function upcaseWord(w: number): number {
  return w ^
    (((w + 0x1f1f1f1f) & ~(w + 0x05050505)) >>> 2 & 0x20202020);
}
