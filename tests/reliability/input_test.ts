import { assert, assertEquals } from "@std/assert";
import { serveOn } from "../_transport.ts";
import { Utf8Upcaser } from "../../src/kernels/unicode_upcase.ts";
import { recordFigure, scale } from "../_figures.ts";
import { asciiUpper, exchange, randomBytes, utf8 } from "../_helpers.ts";

const SEGMENT = 64 * 1024 * 1024;
const TOTAL = scale(64, 1024) * 1024 * 1024;

/**
 * Unicode mode applied to all of `data` in one chunk, including an
 * unfinished sequence at the very end, which passes through as it is.
 */
function wholeUnicode(data: Uint8Array): Uint8Array {
  const upcaser = new Utf8Upcaser();
  const body = upcaser.push(data.slice());
  const tail = upcaser.flush();
  const out = new Uint8Array(body.length + tail.length);
  out.set(body);
  out.set(tail, body.length);
  return out;
}

/**
 * Sends `data` in random-sized writes (1 byte to 64 KiB, seeded), reading
 * concurrently, and returns the reply.
 */
async function sendInRandomChunks(
  port: number,
  data: Uint8Array,
  seed: number,
) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sizes = randomBytes(4 * 1024 * 1024, seed);
  const reply = new Response(conn.readable).arrayBuffer();
  let offset = 0;
  let k = 0;
  while (offset < data.length) {
    // Mostly large writes, with runs of tiny ones.
    const r = (sizes[k++ % sizes.length]! << 8) | sizes[k++ % sizes.length]!;
    const size = r % 7 === 0 ? 1 + (r % 3) : 1 + (r % 65536);
    const chunk = data.subarray(offset, offset + size);
    let written = 0;
    while (written < chunk.length) {
      written += await conn.write(chunk.subarray(written));
    }
    offset += chunk.length;
  }
  await conn.closeWrite();
  return new Uint8Array(await reply);
}

for (const unicode of [false, true]) {
  const mode = unicode ? "unicode" : "ascii";
  Deno.test(`server in ${mode} mode returns random bytes in random chunkings byte-exact`, async () => {
    await using server = await serveOn({
      hostname: "127.0.0.1",
      port: 0,
      unicode,
      onListen() {},
    });
    const segments = TOTAL / SEGMENT;
    let bytes = 0;
    for (let s = 0; s < segments; s++) {
      const data = randomBytes(SEGMENT, 1000 + s);
      // The reference: ASCII is Python's bytes.upper(); unicode mode is the
      // same mapping applied to the whole segment at once, which the unit
      // tests check against an independent decoder-based reference.
      const expected = unicode ? wholeUnicode(data) : asciiUpper(data);
      const got = await sendInRandomChunks(server.addr.port, data, 2000 + s);
      assertEquals(got.length, expected.length, `segment ${s} length`);
      assert(got.every((b, i) => b === expected[i]), `segment ${s} bytes`);
      bytes += data.length;
    }
    await recordFigure({
      test: `random bytes, ${mode} mode`,
      load: `${
        bytes / 2 ** 20
      } MiB of random bytes over ${segments} connections`,
      faults:
        "writes of random size from 1 byte to 64 KiB; invalid UTF-8 throughout",
      result: "every reply byte-exact against the reference",
      bytesLost: 0,
    });
  });
}

Deno.test("server handles zero-length, 1-byte and single 16 MiB writes", async () => {
  await using server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  const reply = new Response(conn.readable).arrayBuffer();
  assertEquals(await conn.write(new Uint8Array(0)), 0);
  const small = utf8("one byte at a time");
  for (const b of small) assertEquals(await conn.write(Uint8Array.of(b)), 1);
  await conn.write(new Uint8Array(0));
  const big = randomBytes(16 * 1024 * 1024, 3);
  let written = 0;
  // One write call for the whole 16 MiB; the loop only finishes a partial write.
  while (written < big.length) {
    written += await conn.write(big.subarray(written));
  }
  await conn.closeWrite();
  const got = new Uint8Array(await reply);
  assertEquals(got, asciiUpper(Uint8Array.from([...small, ...big])));
  await recordFigure({
    test: "odd write sizes",
    load: "1 connection",
    faults: "zero-length writes, 18 one-byte writes, one 16 MiB write",
    result: "reply byte-exact",
    bytesLost: 0,
  });
});

Deno.test("server is not disturbed by clients that connect and send nothing", async () => {
  await using server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  });
  const port = server.addr.port;
  const silent = await Promise.all(
    Array.from(
      { length: scale(200, 2000) },
      () => Deno.connect({ hostname: "127.0.0.1", port }),
    ),
  );
  // Working clients are served while the silent ones hold their sockets.
  await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const data = randomBytes(10_000, i + 1);
    assertEquals(await exchange(port, data.slice()), asciiUpper(data));
  }));
  // Silent clients that half-close get an empty reply and a clean close.
  await Promise.all(silent.map(async (conn) => {
    await conn.closeWrite();
    assertEquals(
      (await new Response(conn.readable).arrayBuffer()).byteLength,
      0,
    );
  }));
  assertEquals(
    new TextDecoder().decode(await exchange(port, utf8("ok"))),
    "OK",
  );
  await recordFigure({
    test: "silent clients",
    load: `${silent.length} clients that send nothing, beside 100 working ones`,
    faults: "connections that never send; then half-close with no data",
    result:
      "working clients byte-exact; silent ones get an empty reply and a clean close",
    bytesLost: 0,
  });
});
