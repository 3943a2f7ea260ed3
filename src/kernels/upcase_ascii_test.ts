import { assertEquals } from "@std/assert";
import {
  kernelFallbacks,
  simdMemory,
  upcaseAsciiInPlace,
  upcaseAsciiPrefix,
} from "./upcase_ascii.ts";

const text = "the quick brown fox jumps over the lazy dog, 0123456789 é";

Deno.test("upcaseAsciiInPlace gives the same bytes in the SIMD kernel's memory and outside it, and counts only the outside call as a fallback", () => {
  const memory = simdMemory();
  if (!memory) throw new Error("No WebAssembly SIMD here");
  const inside = memory.subarray(
    0,
    new TextEncoder().encodeInto(text, memory).written,
  );
  const outside = new TextEncoder().encode(text);
  const before = kernelFallbacks();
  upcaseAsciiInPlace(inside);
  assertEquals(kernelFallbacks(), before);
  upcaseAsciiInPlace(outside);
  assertEquals(kernelFallbacks().inPlace, before.inPlace + 1);
  assertEquals(inside, outside);
  assertEquals(
    new TextDecoder().decode(outside),
    text.toUpperCase().replace("É", "é"),
  );
});

Deno.test("upcaseAsciiPrefix stops at the same byte in either kernel", () => {
  const memory = simdMemory();
  if (!memory) throw new Error("No WebAssembly SIMD here");
  const inside = memory.subarray(
    0,
    new TextEncoder().encodeInto(text, memory).written,
  );
  const outside = new TextEncoder().encode(text);
  const before = kernelFallbacks();
  const stop = upcaseAsciiPrefix(inside);
  assertEquals(kernelFallbacks(), before);
  assertEquals(upcaseAsciiPrefix(outside), stop);
  assertEquals(kernelFallbacks().prefix, before.prefix + 1);
  assertEquals(stop, text.indexOf("é"));
  assertEquals(inside, outside);
});
