import { assert, assertEquals } from "@std/assert";
import {
  simdMemory,
  upcaseSimdInPlace,
  upcaseSimdPrefix,
} from "./simd_upcase.ts";
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

/** The kernel's memory; WebAssembly SIMD is part of Deno, so it must load. */
function memory(): Uint8Array {
  const view = simdMemory();
  if (!view) throw new Error("WebAssembly SIMD did not load");
  return view;
}

/** Where the tests work in the kernel's memory: away from its ends. */
const BASE = 1 << 20;

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

Deno.test("simdMemory gives the same fixed 16 MiB view on every call", () => {
  const view = memory();
  assertEquals(view.length, 16 << 20);
  assertEquals(view.byteOffset, 0);
  assert(simdMemory() === view);
});

Deno.test("upcaseSimdInPlace is right for all 256 values in every lane of a vector", () => {
  const all = memory();
  for (let lane = 0; lane < 16; lane++) {
    // Vector v holds v in byte `lane`, random bytes elsewhere; 16-aligned,
    // so that lanes are lanes, and 4 KiB long, so that the 64-byte loop runs.
    const input = randomBytes(4096, lane + 1);
    for (let v = 0; v < 256; v++) input[v * 16 + lane] = v;
    const view = all.subarray(BASE, BASE + input.length);
    view.set(input);
    assert(upcaseSimdInPlace(view));
    assertEquals(view, asciiUpper(input));
  }
});

Deno.test("upcaseSimdInPlace is right at every length and alignment and writes nowhere else", () => {
  const all = memory();
  const next = randomInts(13);
  for (let round = 0; round < 4200; round++) {
    const length = round < 4000 ? next(301) : 64 * 1024 + next(64);
    const start = BASE + next(64);
    // Bytes on both sides of the view, to see that they stay as they were.
    const around = all.subarray(start - 64, start + length + 64);
    around.set(randomBytes(around.length, round + 1));
    const expected = around.slice();
    expected.set(asciiUpper(expected.subarray(64, 64 + length)), 64);
    assert(upcaseSimdInPlace(all.subarray(start, start + length)));
    assertEquals(around, expected, `length ${length} at offset ${start}`);
  }
});

Deno.test("upcaseSimdInPlace and upcaseSimdPrefix leave views of other memory alone", () => {
  memory();
  const bytes = utf8("abc");
  assertEquals(upcaseSimdInPlace(bytes), false);
  assertEquals(upcaseSimdPrefix(bytes), -1);
  // Same bytes, but a copy is not the kernel's memory.
  const copy = memory().slice(0, 100);
  assertEquals(upcaseSimdInPlace(copy), false);
  assertEquals(bytes, utf8("abc"));
});

Deno.test("upcaseSimdPrefix finds a byte >= 0x80 of every value in every lane", () => {
  const all = memory();
  for (let lane = 0; lane < 16; lane++) {
    for (let value = 0x80; value < 0x100; value++) {
      // At 64 + 16 + lane the 64-byte loop has run once and then stops, and
      // the 16-byte loop stops too.
      const input = randomBytes(200, value * 16 + lane).map((b) => b & 0x7f);
      const at = 80 + lane;
      input[at] = value;
      const view = all.subarray(BASE, BASE + input.length);
      view.set(input);
      assertEquals(upcaseSimdPrefix(view), at);
      assertEquals(view, prefixReference(input).output);
    }
  }
});

Deno.test("upcaseSimdPrefix is right at every length and alignment and writes nowhere else", () => {
  const all = memory();
  const next = randomInts(17);
  for (let round = 0; round < 4200; round++) {
    const length = round < 4000 ? next(301) : 64 * 1024 + next(64);
    const start = BASE + next(64);
    const around = all.subarray(start - 64, start + length + 64);
    around.set(randomBytes(around.length, round + 1));
    const view = all.subarray(start, start + length);
    // Half the rounds are ASCII but for one byte >= 0x80 or none, so that
    // the loops both run to the end and stop part way.
    if (round % 2 === 0) {
      for (let i = 0; i < length; i++) view[i]! &= 0x7f;
      if (length > 0 && next(4) !== 0) view[next(length)] = 0x80 + next(128);
    }
    const { index, output } = prefixReference(view);
    const expected = around.slice();
    expected.set(output, 64);
    assertEquals(upcaseSimdPrefix(view), index);
    assertEquals(around, expected, `length ${length} at offset ${start}`);
  }
});

Deno.test("upcaseUtf8 gives the same in the kernel's memory as elsewhere", () => {
  const all = memory();
  const text = utf8("Straße ǆ café 日本 and plain ascii text, ");
  const next = randomInts(19);
  for (let round = 0; round < 300; round++) {
    // ASCII runs of random length, then text or random bytes.
    const input = new Uint8Array(next(400));
    input.set(randomBytes(input.length, round + 1).map((b) => b & 0x7f));
    const from = next(input.length + 1);
    const tail = round % 2 === 0
      ? randomBytes(input.length, round + 1)
      : text.subarray(0, input.length);
    input.set(tail.subarray(0, input.length - from), from);
    const view = all.subarray(
      BASE + round % 32,
      BASE + round % 32 + input.length,
    );
    view.set(input);
    const expected = upcaseUtf8(input.slice());
    const got = upcaseUtf8(view);
    assertEquals(got.output, expected.output);
    assertEquals(got.rest, expected.rest);
  }
});
