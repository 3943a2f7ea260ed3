/**
 * Throughput of the uppercasing kernels: `deno task bench`, or
 * `deno bench bench/kernel_bench.ts`. GB/s below is bytes / average time.
 *
 * Measured with Deno 2.9.6 on this project's 2-core Xeon (Emerald Rapids,
 * KVM; load average 0.7 from other jobs), two runs, GB/s = 65536 / average:
 *
 * | 64 KiB                                       | run 1 | run 2 |
 * | -------------------------------------------- | ----- | ----- |
 * | ascii SWAR (upcaseAsciiInPlace)              |  4.46 |  4.40 |
 * | byte loop (the kernel before SWAR)           |  0.45 |  0.45 |
 * | ascii SWAR, view at an odd offset            |  4.28 |  4.28 |
 * | upcaseAsciiPrefix (SWAR)                     |  4.85 |  4.78 |
 * | unicode mode, ASCII-only (upcaseUtf8)        |  4.85 |  4.82 |
 * | unicode mode, ASCII-only (Utf8Upcaser.push)  |  4.85 |  4.82 |
 * | SIMD, view of wasm memory                    |  29.8 |  29.8 |
 * | SIMD prefix, view of wasm memory             |  26.2 |  26.2 |
 * | unicode mode, ASCII-only in wasm memory      |  26.2 |  26.2 |
 *
 * Per call, where SIMD wins from about 16 bytes on:
 *
 * |            | 64 B             | 1 KiB            |
 * | ---------- | ---------------- | ---------------- |
 * | ascii SWAR | 34 ns, 1.9 GB/s  | 286 ns, 3.6 GB/s |
 * | SIMD       | 17 ns, 3.7 GB/s  | 51 ns, 20 GB/s   |
 *
 * Unicode mode on text and on the worst inputs, 64 KiB from a fresh copy
 * each run, before (decoding each valid run with TextDecoder) and after
 * (a lookup per code point), in one `deno bench` run of both, twice;
 * GB/s = 65536 / average, load average 0.6-0.9:
 *
 * | 64 KiB, unicode mode                  | before GB/s  | after GB/s   | after / mixed |
 * | ------------------------------------- | ------------ | ------------ | ------------- |
 * | mixed text                            | 0.129, 0.130 | 0.563, 0.527 | 1             |
 * | é then an invalid byte (c3 a9 ff)     | 0.004, 0.004 | 0.543, 0.549 | 0.96, 1.04    |
 * | every other byte invalid (61 ff)      | 0.454, 0.462 | 0.793, 0.790 | 1.41, 1.50    |
 * | invalid bytes only (ff)               | 0.418, 0.342 | 0.809, 0.726 | 1.44, 1.38    |
 * | stray continuation bytes (80)         | 0.349, 0.227 | 0.788, 0.663 | 1.40, 1.26    |
 * | cut-off sequences (e2 82 41)          | 0.304, 0.337 | 0.448, 0.459 | 0.80, 0.87    |
 * | U+FEFF among invalid bytes            | 0.006, 0.009 | 0.440, 0.440 | 0.78, 0.84    |
 * | 2-byte letters (é)                    | 0.288, 0.260 | 0.446, 0.452 | 0.79, 0.86    |
 * | 4-byte letters (𐐨)                    | 0.156, 0.151 | 0.392, 0.392 | 0.70, 0.74    |
 * | 2 bytes to 3 (ŉ)                      | 0.067, 0.055 | 0.411, 0.329 | 0.73, 0.62    |
 * | 2 bytes to 6 (ΐ)                      | 0.060, 0.060 | 0.322, 0.317 | 0.57, 0.60    |
 * | chunks cut inside a character         | 0.264, 0.271 | 0.412, 0.418 | 0.73, 0.79    |
 * | ASCII-only (unchanged)                | 3.86, 3.58   | 3.86, 3.83   |               |
 * | ASCII-only in wasm memory (unchanged) | 31.2, 31.2   | 31.2, 31.2   |               |
 *
 * `ΐ` is the slowest: it writes 3 bytes for each one read, into an output
 * of exactly that size, and each run's 192 KiB array adds to garbage
 * collection, which shows in the average more than in the fastest run.
 *
 * About 7 ns of each call goes on reading `view.buffer`, which V8 does not
 * inline; the SIMD kernel itself takes about 9 ns at 64 bytes.
 *
 * The kernels do not branch on letters, so that the first run leaves the
 * buffer uppercased does not flatter the later ones. The byte loop does, and
 * its figure swings with that and with the JIT: 0.45 GB/s on average here,
 * 1.45 GB/s at its fastest run.
 *
 * @module
 */
import { upcaseAsciiPrefix } from "../src/kernels/ascii_scan.ts";
import { upcaseAsciiInPlace } from "../src/kernels/ascii_upcase.ts";
import {
  simdMemory,
  upcaseSimdInPlace,
  upcaseSimdPrefix,
} from "../src/kernels/simd_upcase.ts";
import { upcaseUtf8, Utf8Upcaser } from "../src/kernels/unicode_upcase.ts";

const SIZE = 64 * 1024;

/** Printable ASCII, a quarter of it lowercase letters. */
function asciiText(size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => 0x20 + (i % 95));
}

const ascii = asciiText(SIZE);
const asciiOdd = asciiText(SIZE + 1).subarray(1);
/** `pattern`, over and over, to `SIZE` bytes. */
function repeated(pattern: string | number[]): Uint8Array {
  const bytes = typeof pattern === "string"
    ? new TextEncoder().encode(pattern)
    : pattern;
  return new Uint8Array(SIZE).map((_, i) => bytes[i % bytes.length]!);
}

const mixed = repeated("straße ǆ café 日本 ");
/**
 * Inputs that are worst for unicode mode, each of which is to run at least
 * half as fast as mixed text.
 */
const HOSTILE: [string, Uint8Array][] = [
  ["é then an invalid byte (c3 a9 ff)", repeated([0xc3, 0xa9, 0xff])],
  ["every other byte invalid (61 ff)", repeated([0x61, 0xff])],
  ["invalid bytes only (ff)", repeated([0xff])],
  ["stray continuation bytes (80)", repeated([0x80])],
  ["cut-off sequences (e2 82 41)", repeated([0xe2, 0x82, 0x41])],
  [
    "U+FEFF among invalid bytes (dd ef bb bf a3)",
    repeated([
      0xdd,
      0xef,
      0xbb,
      0xbf,
      0xa3,
    ]),
  ],
  ["2-byte letters (é)", repeated("é")],
  ["4-byte letters (𐐨)", repeated("𐐨")],
  ["2 bytes to 3 (ŉ)", repeated("ŉ")],
  ["2 bytes to 6 (ΐ)", repeated("ΐ")],
];
const memory = simdMemory();
if (!memory) throw new Error("WebAssembly SIMD did not load");
/** Views of the kernel's memory, as the connection code carves them. */
function inMemory(offset: number, size: number): Uint8Array {
  const view = memory!.subarray(offset, offset + size);
  view.set(asciiText(size));
  return view;
}
const simd64k = inMemory(0, SIZE);
const simdPrefix64k = inMemory(SIZE, SIZE);
const simdUnicode64k = inMemory(2 * SIZE, SIZE);
const upcaser = new Utf8Upcaser();

/** The kernel before SWAR, for comparison. */
function byteLoop(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b - 0x61 >>> 0 < 26) bytes[i] = b - 0x20;
  }
}

/** Throws when a kernel did not run, so that a bench cannot pass idle. */
function check(done: boolean): void {
  if (!done) throw new Error("The SIMD kernel refused a view of its memory");
}

const group = "64 KiB";
Deno.bench("ascii SWAR", { group, baseline: true }, () => {
  upcaseAsciiInPlace(ascii);
});
Deno.bench("byte loop (before SWAR)", { group }, () => {
  byteLoop(ascii);
});
Deno.bench("ascii SWAR, view at an odd offset", { group }, () => {
  upcaseAsciiInPlace(asciiOdd);
});
Deno.bench("upcaseAsciiPrefix (SWAR)", { group }, () => {
  upcaseAsciiPrefix(ascii);
});
Deno.bench("unicode mode, ASCII-only (upcaseUtf8)", { group }, () => {
  upcaseUtf8(ascii);
});
Deno.bench("unicode mode, ASCII-only (Utf8Upcaser.push)", { group }, () => {
  upcaser.push(ascii);
});
Deno.bench("SIMD, view of wasm memory", { group }, () => {
  check(upcaseSimdInPlace(simd64k));
});
Deno.bench("SIMD prefix, view of wasm memory", { group }, () => {
  check(upcaseSimdPrefix(simdPrefix64k) === SIZE);
});
Deno.bench("unicode mode, ASCII-only in wasm memory", { group }, () => {
  upcaseUtf8(simdUnicode64k);
});
// Unicode mode changes text in place, so each run starts from a fresh copy
// (a 64 KiB copy, a few µs): a second run over uppercased text does less.
const fresh = new Uint8Array(SIZE);
Deno.bench("unicode mode, mixed text", { group }, () => {
  fresh.set(mixed);
  upcaseUtf8(fresh);
});
for (const [what, input] of HOSTILE) {
  Deno.bench(`unicode mode, hostile: ${what}`, { group }, () => {
    fresh.set(input);
    upcaseUtf8(fresh);
  });
}
// Each chunk ends inside a character, which the next push takes in front.
const cut = repeated("é").subarray(1, SIZE - 1);
const cutUpcaser = new Utf8Upcaser();
const cutChunk = new Uint8Array(cut.length);
Deno.bench(
  "unicode mode, hostile: every chunk ends inside a character (Utf8Upcaser.push)",
  { group },
  () => {
    cutChunk.set(cut);
    cutUpcaser.push(cutChunk);
  },
);

for (const [name, size] of [["64 B", 64], ["1 KiB", 1024]] as const) {
  const plain = asciiText(size);
  const view = inMemory(3 * SIZE, size);
  Deno.bench(`ascii SWAR, ${name}`, { group: name, baseline: true }, () => {
    upcaseAsciiInPlace(plain);
  });
  Deno.bench(`SIMD, ${name}`, { group: name }, () => {
    check(upcaseSimdInPlace(view));
  });
}
