import { assertEquals } from "@std/assert";
import { upcaseUtf8 } from "../kernels/unicode_upcase.ts";
import { UpcaseStream } from "./upcase_stream.ts";
import { asciiUpper, randomBytes, utf8 } from "../../tests/_helpers.ts";

/** Runs `input` through a new UpcaseStream in chunks cut at `cuts`. */
async function throughStream(
  input: Uint8Array,
  cuts: number[],
  unicode: boolean,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, input.length]) {
    chunks.push(input.slice(start, cut));
    start = cut;
  }
  const stream = ReadableStream.from(chunks).pipeThrough(
    new UpcaseStream({ unicode }),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// ignoreBOM: a U+FEFF is a character like any other, not to be dropped.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The reference for unicode mode, built differently from the code under
 * test: at each position, the shortest prefix that a strict decoder accepts
 * is one character, which is uppercased; a byte that starts no valid
 * character passes through as it is.
 */
function unicodeReference(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  outer: while (i < input.length) {
    for (let n = 1; n <= 4 && i + n <= input.length; n++) {
      let text: string;
      try {
        text = strict.decode(input.subarray(i, i + n));
      } catch {
        continue;
      }
      out.push(...utf8(text.toUpperCase()));
      i += n;
      continue outer;
    }
    out.push(input[i]!);
    i++;
  }
  return Uint8Array.from(out);
}

/** Random cut points, sorted, from a seeded generator. */
function randomCuts(length: number, seed: number): number[] {
  const noise = randomBytes(64, seed);
  const count = noise[0]! % 20;
  const cuts = new Set<number>();
  for (let k = 0; k < count; k++) {
    cuts.add(((noise[k + 1]! << 8) | noise[k + 2]!) % (length + 1));
  }
  return [...cuts].sort((a, b) => a - b);
}

Deno.test("UpcaseStream unicode maps the issue's example", async () => {
  const out = await throughStream(utf8("straße ǆ café"), [], true);
  assertEquals(new TextDecoder().decode(out), "STRASSE Ǆ CAFÉ");
});

Deno.test("UpcaseStream unicode is right at every split point of multibyte characters", async () => {
  // 2-, 3- and 4-byte characters, with case mappings that change length.
  const text = "aß ǆ é İ ﬀ ς ǰ ŉ 𐐨 日本 😀 z";
  const input = utf8(text);
  const expected = text.toUpperCase();
  for (let a = 0; a <= input.length; a++) {
    const out = await throughStream(input, [a], true);
    assertEquals(new TextDecoder().decode(out), expected, `split at ${a}`);
  }
  // Two cuts inside one 4-byte character, byte by byte.
  const emoji = utf8("x😀y");
  const bytewise = await throughStream(emoji, [1, 2, 3, 4], true);
  assertEquals(new TextDecoder().decode(bytewise), "X😀Y");
});

Deno.test("UpcaseStream unicode passes invalid UTF-8 through unchanged", async () => {
  const cases: [number[], number[]][] = [
    [[0xff, 0x61], [0xff, 0x41]], // never valid
    [[0xc0, 0xaf], [0xc0, 0xaf]], // overlong
    [[0xed, 0xa0, 0x80], [0xed, 0xa0, 0x80]], // surrogate
    [[0xf4, 0x90, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]], // above U+10FFFF
    [[0xc3, 0x61], [0xc3, 0x41]], // lead without continuation
    [[0x80, 0x62], [0x80, 0x42]], // lone continuation
    [[0x61, 0xe2, 0x82], [0x41, 0xe2, 0x82]], // cut off by the end of input
    [[0xc3, 0xa9, 0xff, 0xc3, 0xa9], [0xc3, 0x89, 0xff, 0xc3, 0x89]], // é ÿ-byte é
  ];
  for (const [input, expected] of cases) {
    for (let cut = 0; cut <= input.length; cut++) {
      const out = await throughStream(Uint8Array.from(input), [cut], true);
      assertEquals([...out], expected, `${input} split at ${cut}`);
    }
  }
});

Deno.test("UpcaseStream matches the reference on random bytes in random chunkings", async () => {
  for (let seed = 1; seed <= 200; seed++) {
    // Mostly valid text with random bytes mixed in, and pure noise.
    const noise = randomBytes(300, seed);
    const text = utf8(`héllo ß ǆ 😀 ${seed} straße`);
    const input = seed % 2
      ? noise
      : Uint8Array.from([...text, ...noise.subarray(0, 20), ...text]);
    const cuts = randomCuts(input.length, seed + 1000);
    assertEquals(
      await throughStream(input, cuts, false),
      asciiUpper(input),
      `ascii, seed ${seed}`,
    );
    assertEquals(
      await throughStream(input, cuts, true),
      unicodeReference(input),
      `unicode, seed ${seed}`,
    );
  }
});

Deno.test("UpcaseStream keeps ASCII output as long as its input and counts bytes", async () => {
  const input = randomBytes(5000, 7);
  const stream = new UpcaseStream();
  const out = new Uint8Array(
    await new Response(ReadableStream.from([input.slice()]).pipeThrough(stream))
      .arrayBuffer(),
  );
  assertEquals(out.length, input.length);
  assertEquals([stream.bytesIn, stream.bytesOut], [5000, 5000]);
});

Deno.test("upcaseUtf8 holds back a character cut off at the end", () => {
  const { output, rest } = upcaseUtf8(
    Uint8Array.from([0x61, 0xf0, 0x9f, 0x98]),
  );
  assertEquals([...output], [0x41]);
  assertEquals(rest, 3);
});
