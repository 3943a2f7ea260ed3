import { assertEquals } from "@std/assert";
import { upcaseAsciiInPlace } from "../src/ascii_upcase.ts";
import { asciiUpper, randomBytes } from "./_helpers.ts";

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
