/**
 * Below this length a plain byte loop beats the word loop, which first has to
 * find a word view of the buffer: 31 bytes took 27 ns a byte at a time, 32
 * bytes 25 ns by words (with the view cached).
 */
const WORD_MIN = 32;
/**
 * Below this length the word view comes from a cache (see below) and the word
 * loop is a simple one over a range of it. From here on, a view made for the
 * call and an unrolled loop over all of it win: 1023 and 1024 bytes both took
 * 280 ns, but 64 KiB took a steady 15 µs so, and 15 to 21 µs from run to run
 * with the cached view, whose loop bounds V8 knows less about.
 */
const SMALL_MAX = 1024;

// The last buffer seen by a small call, and a word view of all of it. Making
// an Int32Array costs 10-15 ns, a third of a 64-byte call, and a connection
// usually reads into the same buffer over and over. (Reading `bytes.buffer`
// costs another 7 ns, which V8 does not inline, but there is no way around it.)
let cachedBuffer: ArrayBufferLike | undefined;
let cachedWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

/**
 * Uppercases ASCII letters in place, the way Python's `bytes.upper()` does:
 * `a`–`z` become `A`–`Z` and every other byte is left as it is, so binary
 * data passes through safely. Four bytes are done at a time (SWAR) in the
 * 4-byte-aligned middle of the array.
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
  const length = bytes.length;
  if (length < WORD_MIN) {
    upcaseBytes(bytes, 0, length);
    return bytes;
  }
  const offset = bytes.byteOffset;
  // Words must start on a multiple of 4 in the buffer.
  const head = -offset & 3;
  upcaseBytes(bytes, 0, head);
  const buffer = bytes.buffer;
  let count: number;
  // Within 2 GiB, shifts give exact word indices, which V8 keeps as integers.
  if (length < SMALL_MAX && buffer.byteLength <= 0x7fffffff) {
    count = (length - head) >>> 2;
    const first = (offset + head) >>> 2;
    const end = first + count;
    // A view made earlier can be too short if the buffer has grown, or empty
    // if it has shrunk.
    if (buffer !== cachedBuffer || end > cachedWords.length) {
      cachedWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
      cachedBuffer = buffer;
    }
    for (let i = first; i < end; i++) {
      cachedWords[i] = upcaseWord(cachedWords[i]!);
    }
  } else {
    count = Math.floor((length - head) / 4);
    upcaseWords(new Int32Array(buffer, offset + head, count));
  }
  upcaseBytes(bytes, head + count * 4, length);
  return bytes;
}

function upcaseBytes(bytes: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    // One unsigned compare covers the range 0x61..0x7a.
    if (b - 0x61 >>> 0 < 26) bytes[i] = b - 0x20;
  }
}

function upcaseWords(words: Int32Array): void {
  const length = words.length;
  let i = 0;
  // Four loads before four stores: 15 µs per 64 KiB against 19 µs one word
  // at a time, as the work on four words can overlap.
  for (const end4 = length & ~3; i < end4; i += 4) {
    const w0 = words[i]!;
    const w1 = words[i + 1]!;
    const w2 = words[i + 2]!;
    const w3 = words[i + 3]!;
    words[i] = upcaseWord(w0);
    words[i + 1] = upcaseWord(w1);
    words[i + 2] = upcaseWord(w2);
    words[i + 3] = upcaseWord(w3);
  }
  for (; i < length; i++) words[i] = upcaseWord(words[i]!);
}

/**
 * Uppercases the four bytes of `w` at once. Each byte is tested in its own
 * 8-bit lane, and no sum can carry into the next lane:
 * - `x` is the byte's low 7 bits, 0x00..0x7f.
 * - `x + 0x1f` (at most 0x9e) has its top bit set iff x >= 0x61.
 * - `x + 0x05` (at most 0x84) has its top bit set iff x >= 0x7b, and `| w`
 *   also sets it when the byte itself is >= 0x80.
 * So the top bit of `(x + 0x1f) & ~((x + 0x05) | w)` is set exactly for
 * 0x61..0x7a; shifted down by 2 it is that lane's 0x20 bit, which every
 * lowercase letter has set and the XOR clears. The lane order within the
 * word (endianness) does not matter.
 */
function upcaseWord(w: number): number {
  const x = w & 0x7f7f7f7f;
  return w ^
    (((x + 0x1f1f1f1f) & ~((x + 0x05050505) | w)) >>> 2 & 0x20202020);
}
