import { assertEquals } from "@std/assert";
import { upcaseAsciiInPlace } from "./ascii_upcase.ts";
import { asciiUpper, randomBytes } from "../../tests/_helpers.ts";

Deno.test("upcaseAsciiInPlace maps a-z to A-Z and leaves all other bytes alone", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const expected = Uint8Array.from(
    { length: 256 },
    (_, i) => (i >= 0x61 && i <= 0x7a ? i - 0x20 : i),
  );
  assertEquals(upcaseAsciiInPlace(all.slice()), expected);
});

Deno.test("upcaseAsciiInPlace agrees with bytes.upper() on random data", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const input = randomBytes(1000 + seed * 37, seed);
    assertEquals(upcaseAsciiInPlace(input.slice()), asciiUpper(input));
  }
});

Deno.test("upcaseAsciiInPlace changes only the view it is given", () => {
  const buffer = new TextEncoder().encode("abcdef");
  upcaseAsciiInPlace(buffer.subarray(2, 4));
  assertEquals(new TextDecoder().decode(buffer), "abCDef");
});

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

Deno.test("upcaseAsciiInPlace is right for all 256 values in each byte of a word, beside random bytes", () => {
  // 256 words from offset 0, so all of them go through the word loop: word v
  // holds v in byte `lane` and random bytes in the other three.
  for (let lane = 0; lane < 4; lane++) {
    for (let seed = 1; seed <= 32; seed++) {
      const input = randomBytes(1024, seed * 4 + lane);
      for (let v = 0; v < 256; v++) input[v * 4 + lane] = v;
      assertEquals(upcaseAsciiInPlace(input.slice()), asciiUpper(input));
      // Short arrays take another word loop, over a cached view.
      const halves = input.slice();
      upcaseAsciiInPlace(halves.subarray(0, 512));
      upcaseAsciiInPlace(halves.subarray(512));
      assertEquals(halves, asciiUpper(input));
    }
  }
});

Deno.test("upcaseAsciiInPlace is right for all 65536 pairs of neighbouring bytes in a word", () => {
  // A sum in one byte lane could only disturb the next lane up, by a carry,
  // and which lane that is depends on byte order; so every pair of values
  // is tried in every pair of neighbouring lanes, the other lanes random.
  for (let lane = 0; lane < 3; lane++) {
    const input = randomBytes(65536 * 4, lane + 1);
    for (let pair = 0; pair < 65536; pair++) {
      input[pair * 4 + lane] = pair & 0xff;
      input[pair * 4 + lane + 1] = pair >>> 8;
    }
    assertEquals(upcaseAsciiInPlace(input.slice()), asciiUpper(input));
  }
});

Deno.test("upcaseAsciiInPlace is right at every length and alignment and writes nowhere else", () => {
  const next = randomInts(7);
  for (let round = 0; round < 2100; round++) {
    const length = round < 2000 ? next(301) : 64 * 1024 + next(64);
    const start = next(64);
    // Bytes on both sides of the view, to see that they stay as they were.
    const all = randomBytes(start + length + 64, round + 1);
    const expected = all.slice();
    expected.set(asciiUpper(all.subarray(start, start + length)), start);
    const view = all.subarray(start, start + length);
    assertEquals(upcaseAsciiInPlace(view), view);
    assertEquals(all, expected, `length ${length} at offset ${start}`);
  }
});

Deno.test("upcaseAsciiInPlace works on views of several buffers in turn", () => {
  // Views of different buffers, in turn, exercise the cached word view.
  const a = new Uint8Array(200);
  const b = new Uint8Array(400);
  for (let round = 0; round < 10; round++) {
    for (const bytes of [a, b, a.subarray(3), b.subarray(101, 333)]) {
      bytes.fill(0x61);
      upcaseAsciiInPlace(bytes);
      assertEquals(bytes, new Uint8Array(bytes.length).fill(0x41));
    }
  }
});

Deno.test("upcaseAsciiInPlace follows a resizable buffer as it grows and shrinks", () => {
  const buffer = new ArrayBuffer(64, { maxByteLength: 4096 });
  for (const size of [64, 4096, 128, 1024]) {
    buffer.resize(size);
    const bytes = new Uint8Array(buffer);
    bytes.fill(0x7a);
    upcaseAsciiInPlace(bytes.subarray(1));
    assertEquals(bytes[0], 0x7a);
    assertEquals(bytes.subarray(1), new Uint8Array(size - 1).fill(0x5a));
  }
});
