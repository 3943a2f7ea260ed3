import { assert, assertEquals } from "@std/assert";
import { upcaseUtf8, Utf8Upcaser } from "./unicode_upcase.ts";
import { utf8 } from "../../tests/_helpers.ts";

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

Deno.test("upcaseUtf8 keeps U+FEFF at the start, in the middle and at the end", () => {
  for (
    const text of ["\ufeffab", "a\ufeffb", "ab\ufeff", "\ufeff", "é\ufeffé"]
  ) {
    const { output, rest } = upcaseUtf8(utf8(text));
    assertEquals(decoder.decode(output), text.toUpperCase(), text);
    assertEquals(rest, 0);
  }
});

Deno.test("upcaseUtf8 does not fuse the bytes around U+FEFF into a new character", () => {
  // An invalid byte, U+FEFF, a stray continuation byte: dropping the U+FEFF
  // would leave dd a3, which is U+0763.
  const input = [0xdd, 0xef, 0xbb, 0xbf, 0xa3];
  const { output } = upcaseUtf8(Uint8Array.from(input));
  assertEquals([...output], input);
});

Deno.test("upcaseUtf8 maps every code point as toUpperCase does", () => {
  // All of them in one input, which also crosses every page of the table.
  let text = "";
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp < 0xd800 || cp > 0xdfff) text += String.fromCodePoint(cp);
  }
  const { output, rest } = upcaseUtf8(utf8(text));
  assertEquals(rest, 0);
  assert(decoder.decode(output) === text.toUpperCase());
});

Deno.test("upcaseUtf8 makes no array larger than its output", () => {
  const cases = [
    "straße ǆ café", // same lengths: in place
    "ﬃ ı ſ", // shorter
    "ŉ ǰ", // longer
    "ΐΰ".repeat(1000), // the most growth there is: 3 times
    "abc é 😀 𐐨", // a 4-byte character that changes
  ];
  for (const text of cases) {
    const input = utf8(text);
    const { output } = upcaseUtf8(input.slice());
    assertEquals(decoder.decode(output), text.toUpperCase());
    assert(output.length <= 3 * input.length);
    if (output.buffer.byteLength !== input.length) {
      assertEquals(output.buffer.byteLength, output.length, text);
    }
  }
});

Deno.test("upcaseUtf8 holds back a cut-off character after a change of length", () => {
  // "ß" is changed in place, "ŉ" needs the copy; either way the end waits.
  for (const head of ["ß", "ŉ"]) {
    const { output, rest } = upcaseUtf8(
      Uint8Array.from([...utf8(head), 0xe6, 0x97]),
    );
    assertEquals(decoder.decode(output), head.toUpperCase());
    assertEquals(rest, 2);
  }
});

Deno.test("Utf8Upcaser maps ΐ split at every byte to 3 code points, 3 times as long", () => {
  const input = utf8("ΐ".repeat(5));
  for (let size = 1; size <= input.length; size++) {
    const upcaser = new Utf8Upcaser();
    const parts: number[] = [];
    for (let at = 0; at < input.length; at += size) {
      const chunk = input.slice(at, at + size);
      const out = upcaser.push(chunk);
      assert(out.length <= 3 * (chunk.length + 3));
      parts.push(...out);
    }
    parts.push(...upcaser.flush());
    assertEquals(parts.length, 3 * input.length);
    assertEquals(
      decoder.decode(Uint8Array.from(parts)),
      "\u0399\u0308\u0301".repeat(5),
    );
  }
});
