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
 * | unicode mode, mixed text                     | 0.166 | 0.155 |
 *
 * Per call, where SIMD wins from about 16 bytes on:
 *
 * |            | 64 B             | 1 KiB            |
 * | ---------- | ---------------- | ---------------- |
 * | ascii SWAR | 34 ns, 1.9 GB/s  | 286 ns, 3.6 GB/s |
 * | SIMD       | 17 ns, 3.7 GB/s  | 51 ns, 20 GB/s   |
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
import { upcaseAsciiPrefix } from "../src/ascii_scan.ts";
import { upcaseAsciiInPlace } from "../src/ascii_upcase.ts";
import {
  simdMemory,
  upcaseSimdInPlace,
  upcaseSimdPrefix,
} from "../src/simd_upcase.ts";
import { upcaseUtf8, Utf8Upcaser } from "../src/unicode_upcase.ts";

const SIZE = 64 * 1024;

/** Printable ASCII, a quarter of it lowercase letters. */
function asciiText(size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => 0x20 + (i % 95));
}

const ascii = asciiText(SIZE);
const asciiOdd = asciiText(SIZE + 1).subarray(1);
const mixed = new TextEncoder().encode("straße ǆ café 日本 ".repeat(SIZE / 24))
  .subarray(0, SIZE);
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
Deno.bench("unicode mode, mixed text", { group }, () => {
  upcaseUtf8(mixed);
});

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
