import { assertEquals } from "@std/assert";
import { upcaseAsciiPrefix } from "./ascii_scan.ts";
import { upcaseUtf8 } from "./unicode_upcase.ts";
import { asciiUpper, randomBytes, utf8 } from "../../tests/_helpers.ts";

/** Seeded xorshift32, so that a failure repeats. */
function randomInts(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % below;
  };
}

/** What upcaseAsciiPrefix should leave and return, by the plainest means. */
function prefixReference(
  bytes: Uint8Array,
): { index: number; output: Uint8Array } {
  let index = bytes.findIndex((b) => b >= 0x80);
  if (index < 0) index = bytes.length;
  const output = bytes.slice();
  output.set(asciiUpper(bytes.subarray(0, index)));
  return { index, output };
}

/**
 * Random ASCII with a byte >= 0x80 at a random place, or none, so that the
 * word loop both runs to the end and stops part way.
 */
function mostlyAscii(length: number, seed: number): Uint8Array {
  const next = randomInts(seed);
  const bytes = randomBytes(length, seed).map((b) => b & 0x7f);
  if (length > 0 && next(4) !== 0) bytes[next(length)] = 0x80 + next(128);
  return bytes;
}

Deno.test("upcaseAsciiPrefix stops at the first byte >= 0x80 and leaves it and all after it alone", () => {
  const bytes = utf8(
    "hello, wörld and more lowercase text to pass the threshold",
  );
  const expected = bytes.slice();
  expected.set(utf8("HELLO, W"));
  assertEquals(upcaseAsciiPrefix(bytes), 8);
  assertEquals(bytes, expected);
});

Deno.test("upcaseAsciiPrefix is right for all pairs of neighbouring ASCII bytes in a word", () => {
  // The word formula here drops the masking that bytes >= 0x80 need, so it
  // is checked on its own: every pair of ASCII values in every pair of
  // neighbouring lanes (where a carry would show), the other lanes random.
  for (let lane = 0; lane < 3; lane++) {
    const input = randomBytes(16384 * 4, lane + 1).map((b) => b & 0x7f);
    for (let pair = 0; pair < 16384; pair++) {
      input[pair * 4 + lane] = pair & 0x7f;
      input[pair * 4 + lane + 1] = pair >>> 7;
    }
    const bytes = input.slice();
    assertEquals(upcaseAsciiPrefix(bytes), input.length);
    assertEquals(bytes, asciiUpper(input));
  }
});

Deno.test("upcaseAsciiPrefix finds a byte >= 0x80 of every value in every lane", () => {
  for (let lane = 0; lane < 4; lane++) {
    for (let value = 0x80; value < 0x100; value++) {
      const input = mostlyAscii(200, value * 4 + lane).map((b) => b & 0x7f);
      input[100 + lane] = value;
      const bytes = input.slice();
      assertEquals(upcaseAsciiPrefix(bytes), 100 + lane);
      assertEquals(bytes, prefixReference(input).output);
    }
  }
});

Deno.test("upcaseAsciiPrefix is right at every length and alignment and writes nowhere else", () => {
  const next = randomInts(11);
  for (let round = 0; round < 4200; round++) {
    const length = round < 4000 ? next(301) : 64 * 1024 + next(64);
    const start = next(64);
    const all = randomBytes(start + length + 64, round + 1);
    // Half the rounds take all 256 byte values, half are mostly ASCII.
    if (round % 2 === 0) all.set(mostlyAscii(length, round + 1), start);
    const view = all.subarray(start, start + length);
    const { index, output } = prefixReference(view);
    const expected = all.slice();
    expected.set(output, start);
    assertEquals(upcaseAsciiPrefix(view), index);
    assertEquals(all, expected, `length ${length} at offset ${start}`);
  }
});

Deno.test("upcaseUtf8 treats a long ASCII prefix as before the text that follows", () => {
  // The prefix is done by words, the rest by the full Unicode path; the
  // result must be the same as for the two parts on their own.
  const tails = [
    utf8("straße ǆ café"),
    utf8("日本"),
    new Uint8Array([0xff, 0x61, 0xc3]), // invalid, then a cut-off "é"
    new Uint8Array([0xe6, 0x97]), // a cut-off "日"
  ];
  for (let length = 0; length < 140; length++) {
    for (const tail of tails) {
      const prefix = randomBytes(length, length + 1).map((b) => b & 0x7f);
      const bytes = new Uint8Array(length + tail.length);
      bytes.set(prefix);
      bytes.set(tail, length);
      const alone = upcaseUtf8(tail.slice());
      const expected = new Uint8Array(length + alone.output.length);
      expected.set(asciiUpper(prefix));
      expected.set(alone.output, length);
      const { output, rest } = upcaseUtf8(bytes);
      assertEquals(output, expected, `prefix of ${length}`);
      assertEquals(rest, alone.rest);
    }
  }
});
