import { assert, assertEquals } from "@std/assert";
import { writeInChunks } from "../../bench/loadgen.ts";
import { BufferPool } from "./buffer_pool.ts";
import { pumpConn } from "./pump.ts";
import { Upcaser } from "./upcaser.ts";
import {
  asciiUpper,
  randomBytes,
  readExactly,
  utf8,
} from "../../tests/_helpers.ts";

/** A pool that records the size of every buffer taken and which are out. */
class RecordingPool extends BufferPool {
  readonly taken: number[] = [];
  readonly out = new Set<Uint8Array>();

  override take(size: number): Uint8Array {
    const buffer = super.take(size);
    this.taken.push(buffer.length);
    this.out.add(buffer);
    return buffer;
  }

  override give(buffer: Uint8Array): void {
    this.out.delete(buffer);
    super.give(buffer);
  }
}

/**
 * A connection whose input arrives in the given segments: a read returns
 * what is left of the current segment, as much as fits. Writes are kept;
 * from write number `stallAt` on (counted from 0), a write waits until
 * {@linkcode ScriptedConn.release}, as when the client stops reading.
 */
class ScriptedConn {
  readonly written: Uint8Array[] = [];
  readonly #segments: Uint8Array[];
  #stallAt: number;
  #release: ((value: number) => void) | undefined;
  #onStall: () => void = () => {};
  /** What the waiting write was given. */
  pending: Uint8Array | undefined;
  /** Resolves once a write is waiting. */
  readonly stalled = new Promise<void>((resolve) => this.#onStall = resolve);

  constructor(segments: Uint8Array[], stallAt = Infinity) {
    this.#segments = segments.map((s) => s.slice());
    this.#stallAt = stallAt;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    const segment = this.#segments[0];
    if (!segment) return Promise.resolve(null);
    const n = Math.min(buffer.length, segment.length);
    buffer.set(segment.subarray(0, n));
    if (n === segment.length) this.#segments.shift();
    else this.#segments[0] = segment.subarray(n);
    return Promise.resolve(n);
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.written.length >= this.#stallAt) {
      this.pending = bytes;
      this.#onStall();
      return new Promise((resolve) => this.#release = resolve);
    }
    this.written.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }

  /** Lets the waiting write go on, writing nothing yet, and every later one through. */
  release(): void {
    this.#stallAt = Infinity;
    this.#release?.(0);
  }

  output(): Uint8Array {
    const out = new Uint8Array(this.written.reduce((n, w) => n + w.length, 0));
    let at = 0;
    for (const w of this.written) {
      out.set(w, at);
      at += w.length;
    }
    return out;
  }

  asConn(): Deno.Conn {
    return this as unknown as Deno.Conn;
  }
}

Deno.test("pumpConn reads large after a read that fills its buffer, and small again after one that does not", async () => {
  const segments = [
    randomBytes(512, 1),
    randomBytes(65536 + 100, 2),
    utf8("the rest"),
  ];
  const conn = new ScriptedConn(segments);
  const pool = new RecordingPool({ arena: new Uint8Array(1 << 20) });
  await pumpConn(conn.asConn(), { upcaser: new Upcaser(), pool });
  // 512 filled; 65536 filled; 100 of 65536; 8 of 512; end of input.
  assertEquals(pool.taken, [512, 65536, 65536, 512, 512]);
  assertEquals(pool.out.size, 0);
  const input = Uint8Array.from(segments.flatMap((s) => [...s]));
  assertEquals(conn.output(), asciiUpper(input));
});

Deno.test("pumpConn holds one buffer of at most 64 KiB for a client that stops reading, in both modes", async (t) => {
  const cases = [
    { unicode: false, text: "ab".repeat(300_000) },
    // ΐ (U+0390) is 2 bytes and uppercases to 6, the most any text grows.
    { unicode: true, text: "ΐ".repeat(300_000) },
  ];
  for (const { unicode, text } of cases) {
    await t.step(unicode ? "unicode, ΐ" : "ascii", async () => {
      const input = utf8(text);
      // Six replies go out, by then from the largest reads; the seventh
      // finds the client not reading.
      const conn = new ScriptedConn(
        [input.subarray(0, 512), input.subarray(512)],
        6,
      );
      const pool = new RecordingPool({ arena: new Uint8Array(1 << 20) });
      const pumping = pumpConn(conn.asConn(), {
        upcaser: new Upcaser({ unicode }),
        pool,
      });
      await conn.stalled;
      const held = [...pool.out];
      assertEquals(held.length, 1, "one buffer held");
      assert(held[0]!.length <= 65536, `${held[0]!.length} bytes held`);
      // What the write pins is that buffer, not an array of its own.
      const pinned = conn.pending!;
      assert(
        pinned.buffer === held[0]!.buffer &&
          pinned.byteOffset >= held[0]!.byteOffset &&
          pinned.byteOffset + pinned.length <=
            held[0]!.byteOffset + held[0]!.length,
        `the write pins ${pinned.buffer.byteLength} bytes of its own`,
      );
      conn.release();
      await pumping;
      assertEquals(pool.out.size, 0);
      assert(Math.max(...pool.taken) <= 65536, `took ${pool.taken}`);
      assertEquals(conn.output(), utf8(text.toUpperCase()));
    });
  }
});

/**
 * Watches a connection's reads: `readAfter(bytes)` resolves with the size
 * of the first read started once `bytes` had been written.
 */
function watchReads(conn: Deno.Conn) {
  let written = 0;
  const reads: { written: number; size: number }[] = [];
  let wake = () => {};
  const watched = {
    read(buffer: Uint8Array) {
      reads.push({ written, size: buffer.length });
      wake();
      return conn.read(buffer);
    },
    async write(bytes: Uint8Array) {
      const n = await conn.write(bytes);
      written += n;
      return n;
    },
  } as unknown as Deno.Conn;
  async function readAfter(bytes: number): Promise<number> {
    for (;;) {
      const read = reads.find((r) => r.written >= bytes);
      if (read) return read.size;
      await new Promise<void>((resolve) => wake = resolve);
    }
  }
  return { watched, readAfter };
}

Deno.test("pumpConn waits with a small buffer on a connection that carried bulk data and went quiet", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const server = await listener.accept();
  const pool = new RecordingPool({ arena: new Uint8Array(1 << 20) });
  const { watched, readAfter } = watchReads(server);
  const pumping = pumpConn(watched, { upcaser: new Upcaser(), pool });

  const bulk = randomBytes(256 * 1024, 3);
  const [, reply] = await Promise.all([
    writeInChunks(client, bulk, 64 * 1024),
    readExactly(client, bulk.length),
  ]);
  assertEquals(reply, asciiUpper(bulk));
  assert(Math.max(...pool.taken) === 65536, "the bulk data was read large");
  // Then one short message, and the client goes quiet.
  await client.write(utf8("quiet now"));
  assertEquals(await readExactly(client, 9), utf8("QUIET NOW"));
  assertEquals(await readAfter(bulk.length + 9), 512);
  assertEquals([...pool.out].map((b) => b.length), [512]);

  await client.closeWrite();
  await pumping;
  server.close();
  assertEquals(await client.read(new Uint8Array(1)), null);
});
