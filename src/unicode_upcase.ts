import { upcaseAsciiPrefix } from "./ascii_scan.ts";
import { upcaseAsciiInPlace } from "./ascii_upcase.ts";
import { upcaseSimdInPlace, upcaseSimdPrefix } from "./simd_upcase.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Measures the UTF-8 sequence that starts at `bytes[i]`, following the
 * Unicode rules for well-formed sequences (no overlongs, no surrogates,
 * nothing above U+10FFFF).
 *
 * @returns the sequence's length (1 to 4) when it is complete and valid,
 * 0 when it is a valid start cut off by the end of `bytes`, or -1 when the
 * byte at `i` does not start a valid sequence.
 */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i]!;
  if (lead < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    need = 1;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    if (lead === 0xe0) lo = 0xa0;
    else if (lead === 0xed) hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    if (lead === 0xf0) lo = 0x90;
    else if (lead === 0xf4) hi = 0x8f;
  } else {
    return -1;
  }
  for (let k = 1; k <= need; k++) {
    if (i + k >= bytes.length) return 0;
    const next = bytes[i + k]!;
    if (next < lo || next > hi) return -1;
    lo = 0x80;
    hi = 0xbf;
  }
  return need + 1;
}

/** An output buffer that is only made once the output's length changes. */
class Output {
  #bytes: Uint8Array | undefined;
  #length = 0;
  #copied = 0;
  readonly #input: Uint8Array;

  constructor(input: Uint8Array) {
    this.#input = input;
  }

  /** Puts `upper` in the place of input bytes `start` to `end`. */
  replace(start: number, end: number, upper: Uint8Array): void {
    if (!this.#bytes && upper.length === end - start) {
      this.#input.set(upper, start);
      return;
    }
    this.#append(this.#input.subarray(this.#copied, start));
    this.#append(upper);
    this.#copied = end;
  }

  /** The output, for input bytes up to `end`. */
  finish(end: number): Uint8Array {
    if (!this.#bytes) return this.#input.subarray(0, end);
    this.#append(this.#input.subarray(this.#copied, end));
    return this.#bytes.subarray(0, this.#length);
  }

  #append(part: Uint8Array): void {
    const needed = this.#length + part.length;
    if (!this.#bytes || needed > this.#bytes.length) {
      const grown = new Uint8Array(
        Math.max(needed, this.#input.length + 64) * 2,
      );
      if (this.#bytes) grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    this.#bytes.set(part, this.#length);
    this.#length = needed;
  }
}

/**
 * Uppercases the UTF-8 text in `bytes`, leaving bytes that are not valid
 * UTF-8 unchanged. A valid but unfinished sequence at the end is not
 * consumed: its length is returned as `rest`, so that a caller can prepend
 * it to the next chunk.
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
  let start = upcaseSimdPrefix(bytes);
  if (start < 0) start = upcaseAsciiPrefix(bytes);
  if (start === bytes.length) return { output: bytes, rest: 0 };
  // ASCII bytes never occur inside a multibyte sequence, so the rest of them
  // can be mapped first, in place, whatever surrounds them.
  const after = bytes.subarray(start);
  if (!upcaseSimdInPlace(after)) upcaseAsciiInPlace(after);
  const output = new Output(bytes);
  let i = start;
  let end = bytes.length;
  while (i < end) {
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      end = i;
      break;
    }
    // ASCII is done; an invalid byte passes through as it is, since decoding
    // would turn it into U+FFFD and change the client's data.
    if (n < 2) {
      i++;
      continue;
    }
    // From here, the run of valid text is mapped in one go.
    let j = i + n;
    for (let m; j < end && (m = sequenceLength(bytes, j)) > 0;) j += m;
    const upper = encoder.encode(
      decoder.decode(bytes.subarray(i, j)).toUpperCase(),
    );
    output.replace(i, j, upper);
    i = j;
  }
  return { output: output.finish(end), rest: bytes.length - end };
}

/**
 * Uppercases UTF-8 text that arrives in chunks, with full Unicode case
 * mapping (`straße` becomes `STRASSE`). A character split across two chunks
 * is joined before it is mapped. Bytes that are not valid UTF-8 pass through
 * unchanged, and so does an unfinished sequence at the end of the input.
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
