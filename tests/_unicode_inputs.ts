/**
 * Random inputs for the unicode-mode tests, from a seeded generator so that
 * a failure can be replayed: text in many scripts, the characters whose
 * uppercase is longer, every kind of invalid UTF-8, format characters and
 * random bytes, mixed in random proportions.
 *
 * @module
 */

import { NEWER_IN_V8 } from "./_python_upper.ts";

/** A seeded source of random integers (mulberry32). */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** An integer from 0 to `below - 1`. */
  below(below: number): number {
    let t = this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32 * below) >>> 0;
  }

  /** An integer from `lo` to `hi`, both included. */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

/** Blocks of many scripts, cased and not, in and above the BMP. */
const SCRIPTS: [number, number][] = [
  [0x20, 0x7e],
  [0xa0, 0x24f],
  [0x250, 0x2af],
  [0x300, 0x36f], // Latin, IPA
  [0x370, 0x3ff],
  [0x400, 0x52f],
  [0x531, 0x58f],
  [0x5d0, 0x5ea], // Greek..
  [0x620, 0x64a],
  [0x900, 0x97f],
  [0xe00, 0xe5b],
  [0x10a0, 0x10ff],
  [0x13a0, 0x13fd],
  [0x1c80, 0x1cbf],
  [0x1d00, 0x1dbf],
  [0x1e00, 0x1fff],
  [0x2100, 0x218f],
  [0x2460, 0x24ff],
  [0x2c00, 0x2d2f],
  [0x3040, 0x30ff],
  [0x4e00, 0x9fff],
  [0xa640, 0xa69f],
  [0xa720, 0xa7ff],
  [0xab70, 0xabbf],
  [0xac00, 0xd7a3],
  [0xfb00, 0xfb4f],
  [0xff00, 0xffef], // CJK, Hangul..
  [0x10400, 0x1044f],
  [0x104b0, 0x104ff],
  [0x10570, 0x105bf], // Deseret..
  [0x10c80, 0x10cff],
  [0x10d40, 0x10d8f],
  [0x118a0, 0x118ff],
  [0x16e40, 0x16e9f],
  [0x1d400, 0x1d7ff],
  [0x1e900, 0x1e95f],
  [0x1f300, 0x1faff],
  [0x20000, 0x2a6df],
  [0xf0000, 0xffffd], // emoji..
];

/** Format characters, U+FEFF (the byte order mark) among them. */
const FORMAT = [
  0xad,
  0x61c,
  0x180e,
  0x200b,
  0x200c,
  0x200d,
  0x200e,
  0x200f,
  0x2028,
  0x2029,
  0x202a,
  0x202e,
  0x2060,
  0x2064,
  0x2066,
  0x206f,
  0xfeff,
  0xfff9,
  0xfffb,
  0x110bd,
  0x1d173,
  0xe0001,
  0xe0020,
  0xe007f,
];

/** Characters whose uppercase is more than one code point, from V8. */
const EXPANDING: number[] = [];
for (let cp = 0; cp < 0x20000; cp++) {
  const char = String.fromCodePoint(cp);
  if ([...char.toUpperCase()].length > 1) EXPANDING.push(cp);
}
// The ones the issue names must be among them, or the list is wrong.
for (const char of "ßŉǰΐﬀᾳᾀῼ") {
  if (!EXPANDING.includes(char.codePointAt(0)!)) {
    throw new Error(`No expansion found for ${char}`);
  }
}

const encoder = new TextEncoder();

function utf8Of(codePoints: number[]): number[] {
  return [...encoder.encode(String.fromCodePoint(...codePoints))];
}

/** A code point from `lo` on, any but the surrogates, mostly in the BMP. */
function anyCodePoint(random: Random, lo = 0): number {
  const cp = random.between(lo, random.below(4) ? 0xffff : 0x10ffff);
  return cp >= 0xd800 && cp <= 0xdfff ? cp + 0x800 : cp;
}

/** The bytes of `value` in the UTF-8 pattern of `length` bytes (1 to 6). */
function pattern(value: number, length: number): number[] {
  if (length === 1) return [value];
  const bytes = [];
  for (let k = length - 1; k > 0; k--) {
    bytes.unshift(0x80 | (value & 0x3f));
    value = Math.floor(value / 64);
  }
  return [((0xff00 >> length) & 0xff) | value, ...bytes];
}

/** One piece of invalid UTF-8. */
function invalid(random: Random): number[] {
  switch (random.below(9)) {
    case 0: // overlong: a code point in more bytes than it needs
      return random.pick([
        pattern(random.below(0x80), 2),
        pattern(random.below(0x800), 3),
        pattern(random.below(0x10000), 4),
      ]);
    case 1: // an encoded surrogate
      return pattern(random.between(0xd800, 0xdfff), 3);
    case 2: // above U+10FFFF
      return pattern(random.between(0x110000, 0x1fffff), 4);
    case 3: // the old 5- and 6-byte forms
      return random.below(2)
        ? pattern(random.between(0x200000, 0x3ffffff), 5)
        : pattern(random.between(0x4000000, 0x7fffffff), 6);
    case 4: // bytes never valid
      return [random.pick([0xc0, 0xc1, 0xf5, 0xf8, 0xfc, 0xfe, 0xff])];
    case 5: // stray continuation bytes
      return Array.from(
        { length: random.between(1, 4) },
        () => random.between(0x80, 0xbf),
      );
    default: { // a character cut short (what comes next may end it)
      const whole = utf8Of([anyCodePoint(random, 0x80)]);
      return whole.slice(0, random.between(1, whole.length - 1));
    }
  }
}

/** One piece of input of a random kind. */
function piece(random: Random, weights: number[]): number[] {
  let kind = random.below(weights.reduce((a, b) => a + b));
  let k = 0;
  while (kind >= weights[k]!) kind -= weights[k++]!;
  const count = random.between(1, 40);
  switch (k) {
    case 0: // random bytes
      return Array.from({ length: count }, () => random.below(256));
    case 1: // ASCII text
      return Array.from({ length: count }, () => random.between(0x20, 0x7e));
    case 2: { // text in one script
      const [lo, hi] = random.pick(SCRIPTS);
      return utf8Of(
        Array.from({ length: count }, () => random.between(lo, hi)),
      );
    }
    case 3:
      return utf8Of([random.pick(EXPANDING)]);
    case 4:
      return utf8Of([random.pick(FORMAT)]);
    case 5:
      return utf8Of([anyCodePoint(random)]);
    case 6:
      return utf8Of([random.pick([...NEWER_IN_V8.keys()])]);
    default:
      return invalid(random);
  }
}

/** Weights of the kinds of {@linkcode piece}, one set per kind of input. */
const PROFILES = [
  [1, 4, 8, 3, 2, 2, 1, 3], // mostly text, some of everything
  [1, 1, 2, 1, 2, 1, 0, 8], // mostly invalid
  [1, 0, 0, 0, 0, 0, 0, 0], // random bytes only
  [0, 20, 2, 1, 1, 1, 0, 1], // mostly ASCII
  [0, 1, 2, 6, 3, 1, 1, 1], // expansions and format characters
];

/** A random input of a random length, mostly a few KiB. */
export function randomInput(random: Random): Uint8Array {
  const size = random.pick([16, 2048, 2048, 16384, 65536]);
  const target = random.below(size);
  const weights = random.pick(PROFILES);
  const bytes: number[] = [];
  while (bytes.length < target) bytes.push(...piece(random, weights));
  return Uint8Array.from(bytes);
}

/**
 * Sizes of the writes that send `length` bytes: a byte at a time, small
 * writes, mixed ones or all at once, so that reads split characters.
 */
export function randomWrites(random: Random, length: number): number[] {
  const style = random.below(length <= 600 ? 4 : 3);
  if (style === 0) return [length];
  const sizes = [];
  for (let left = length; left > 0;) {
    const size = Math.min(
      left,
      style === 3
        ? 1
        : style === 1
        ? random.between(1, 16)
        : random.between(1, 4096),
    );
    sizes.push(size);
    left -= size;
  }
  return sizes;
}
