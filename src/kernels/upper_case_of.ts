/**
 * What `String.prototype.toUpperCase` makes of one code point, as UTF-8,
 * looked up in tables that are filled from it, 256 code points at a time, on
 * first use. Uppercasing is the same code point by code point as for whole
 * strings: it does not depend on locale or on neighbouring characters (only
 * lowercasing has context rules, such as final sigma). So the kernel can map
 * text one code point at a time, with no string made per character.
 *
 * @module
 */

/** The entry of a code point that stays as it is: any negative would do. */
const SAME = -1;
/** Entries not filled yet; a real entry is never 0. */
const PENDING = 0;
/** The entry of a 2-byte lead and a byte that does not continue it. */
const NOT_UTF8 = -2;
// The BMP, where nearly all text is, is one flat array, so that a lookup
// there is one load. Its pages are zeros until filled, and so are not in
// memory until a client sends text from them.
const bmp = new Int32Array(0x10000);
const PENDING_PAGE = new Int32Array(256);
/** Shared by every page above the BMP on which nothing changes: most. */
const SAME_PAGE = new Int32Array(256).fill(SAME);
// Filled with a shared page up front, so that a lookup has no test for a
// missing page.
const pages: Int32Array[] = Array.from({ length: 0x1100 }, () => PENDING_PAGE);
/** By 2-byte sequence: the lead's low 5 bits, then the next byte. */
const pairs = new Int32Array(32 * 256);
/**
 * Room for this many uppercases longer than 3 bytes; V8's Unicode 16 has
 * 369 (the 4-byte letters above the BMP, and expansions such as `ᾀ`).
 */
const LONG_CAPACITY = 2048;
// Two words for each, in an array that is never replaced, so that V8 can
// treat the binding as a constant: that measured 5% faster for `ΐ`.
const longWords = new Int32Array(2 * LONG_CAPACITY);
let longCount = 0;
const encoder = new TextEncoder();

/**
 * Looks up the uppercase of a code point, as UTF-8 packed into a number so
 * that the kernel can write it with few stores and no loop: `entry >>> 24`
 * is its length in bytes, 1 to 6 (`ΐ`, 2 bytes, uppercases to 3 code points,
 * 6 bytes). The low 24 bits hold up to 3 bytes, first byte lowest; a longer
 * one is in {@linkcode upperCaseLongWords} from index `entry & 0xffffff`.
 *
 * @param codePoint A Unicode scalar value (0 to 0x10FFFF, no surrogates).
 * @returns a negative number when the code point stays as it is, or the
 * packed uppercase, which is positive.
 *
 * @example Three kinds of entry
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { upperCaseLongWords, upperCaseOf } from "./upper_case_of.ts";
 *
 * assert(upperCaseOf(0x65e5) < 0); // 日 stays
 * assertEquals(upperCaseOf(0xe9), 2 << 24 | 0x89c3); // é: É, C3 89
 * const entry = upperCaseOf(0x390); // ΐ: Ϊ́, CE 99 CC 88 CC 81
 * assertEquals(entry >>> 24, 6);
 * const at = entry & 0xffffff;
 * assertEquals(
 *   [...upperCaseLongWords().subarray(at, at + 2)],
 *   [0x88cc99ce | 0, 0x81cc],
 * );
 * ```
 */
export function upperCaseOf(codePoint: number): number {
  const entry = codePoint < 0x10000
    ? bmp[codePoint]!
    : pages[codePoint >>> 8]![codePoint & 0xff]!;
  return entry === PENDING ? fillPage(codePoint) : entry;
}

/**
 * Looks up the uppercase of a 2-byte sequence by its bytes, as
 * {@linkcode upperCaseOf} does by code point: one load, where decoding
 * first and then looking up took a sixth longer for text such as `ΐ`.
 *
 * @param lead The first byte, 0xC2 to 0xDF.
 * @param next The byte after it, of any value.
 * @returns what {@linkcode upperCaseOf} returns for the sequence's code
 * point, or a number below -1 when `next` is not a continuation byte (so
 * `lead` starts no valid sequence).
 *
 * @example Look up `é` and a lead byte followed by ASCII
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { upperCaseOf, upperCaseOfPair } from "./upper_case_of.ts";
 *
 * assertEquals(upperCaseOfPair(0xc3, 0xa9), upperCaseOf(0xe9));
 * assert(upperCaseOfPair(0xc3, 0x41) < -1);
 * ```
 */
export function upperCaseOfPair(lead: number, next: number): number {
  const at = (lead & 0x1f) << 8 | next;
  const entry = pairs[at]!;
  return entry === PENDING ? fillPair(at) : entry;
}

/**
 * Gives the uppercases longer than 3 bytes, two words each: the first 4
 * bytes, then the rest (first byte lowest). Read an entry's words before
 * the next {@linkcode upperCaseOf} call, which may reuse them; do not
 * change them.
 *
 * @returns the words, at the indices that {@linkcode upperCaseOf} gives.
 */
export function upperCaseLongWords(): Int32Array {
  return longWords;
}

/** Fills the page of `codePoint`, and returns that code point's entry. */
function fillPage(codePoint: number): number {
  const index = codePoint >>> 8;
  const chars = Array.from(
    { length: 256 },
    (_, k) => String.fromCodePoint(index << 8 | k),
  );
  const text = chars.join("");
  // Should the long uppercases ever fill their array, everything is
  // forgotten and filled again as asked for, so that a page always fits.
  if (longCount + 256 > LONG_CAPACITY) forgetAll();
  // One call tells whether anything on the page changes; most pages do not.
  const changes = text.toUpperCase() !== text;
  if (index < 0x100) {
    for (let k = 0; k < 256; k++) {
      bmp[index << 8 | k] = changes ? entryOf(chars[k]!) : SAME;
    }
    return bmp[codePoint]!;
  }
  let page = SAME_PAGE;
  if (changes) {
    page = new Int32Array(256);
    for (let k = 0; k < 256; k++) page[k] = entryOf(chars[k]!);
  }
  pages[index] = page;
  return page[codePoint & 0xff]!;
}

function fillPair(at: number): number {
  const next = at & 0xff;
  pairs[at] = (next & 0xc0) === 0x80
    ? upperCaseOf((at >> 8) << 6 | (next & 0x3f))
    : NOT_UTF8;
  return pairs[at]!;
}

function entryOf(char: string): number {
  const upper = char.toUpperCase();
  if (upper === char) return SAME;
  const b = new Uint8Array(8);
  const { written } = encoder.encodeInto(upper, b);
  if (written <= 3) return written << 24 | b[2]! << 16 | b[1]! << 8 | b[0]!;
  const at = 2 * longCount++;
  longWords[at] = b[3]! << 24 | b[2]! << 16 | b[1]! << 8 | b[0]!;
  longWords[at + 1] = b[5]! << 8 | b[4]!;
  return written << 24 | at;
}

function forgetAll(): void {
  bmp.fill(PENDING);
  pairs.fill(PENDING);
  pages.fill(PENDING_PAGE);
  longCount = 0;
}
