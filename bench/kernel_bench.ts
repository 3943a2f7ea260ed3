/**
 * Throughput of the uppercasing kernels on 64 KiB chunks:
 * `deno task bench`.
 *
 * @module
 */
import { upcaseAsciiInPlace } from "../src/ascii_upcase.ts";
import { upcaseUtf8 } from "../src/unicode_upcase.ts";

const SIZE = 64 * 1024;
const ascii = new Uint8Array(SIZE).map((_, i) => 0x20 + (i % 95));
const mixed = new TextEncoder().encode("straße ǆ café 日本 ".repeat(SIZE / 24))
  .subarray(0, SIZE);

Deno.bench({
  name: "ascii kernel, 64 KiB",
  group: "64 KiB",
  baseline: true,
  fn() {
    upcaseAsciiInPlace(ascii);
  },
});

Deno.bench({
  name: "unicode mode, ASCII-only 64 KiB",
  group: "64 KiB",
  fn() {
    upcaseUtf8(ascii);
  },
});

Deno.bench({
  name: "unicode mode, mixed text 64 KiB",
  group: "64 KiB",
  fn() {
    upcaseUtf8(mixed);
  },
});
