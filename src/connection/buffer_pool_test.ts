import {
  assert,
  assertEquals,
  assertNotStrictEquals,
  assertStrictEquals,
} from "@std/assert";
import { BufferPool } from "./buffer_pool.ts";

Deno.test("BufferPool rounds a request up to a power of two", () => {
  const pool = new BufferPool();
  assertEquals(
    [1, 2, 3, 511, 512, 513, 65536].map((n) => pool.take(n).length),
    [1, 2, 4, 512, 512, 1024, 65536],
  );
  assertEquals(pool.take(0).length, 1);
});

Deno.test("BufferPool carves buffers from its arena, aligned, until it is full", () => {
  const arena = new Uint8Array(4096);
  const pool = new BufferPool({ arena });
  const small = pool.take(100);
  const big = pool.take(1024);
  const bigger = pool.take(2048);
  for (const b of [small, big, bigger]) {
    assertStrictEquals(b.buffer, arena.buffer);
  }
  // 128 bytes, then two buffers each on the next multiple of 64.
  assertEquals([small.byteOffset, big.byteOffset, bigger.byteOffset], [
    0,
    128,
    1152,
  ]);
  // 3200 of 4096 bytes are carved: 1024 more do not fit.
  const fresh = pool.take(1024);
  assertNotStrictEquals(fresh.buffer, arena.buffer);
  assertEquals(fresh.length, 1024);
  // A smaller one still does.
  assertStrictEquals(pool.take(512).buffer, arena.buffer);
});

Deno.test("BufferPool reuses what is given back, by size, last in first out", () => {
  const pool = new BufferPool({ arena: new Uint8Array(8192) });
  const a = pool.take(1024);
  const b = pool.take(1024);
  const c = pool.take(2048);
  pool.give(a);
  pool.give(b);
  pool.give(c);
  assertStrictEquals(pool.take(1000), b);
  assertStrictEquals(pool.take(1024), a);
  assertStrictEquals(pool.take(2048), c);
});

Deno.test("BufferPool falls back to fresh arrays when the arena is used up, and keeps them up to maxIdleBytes", () => {
  const arena = new Uint8Array(1024);
  const pool = new BufferPool({ arena, maxIdleBytes: 2048 });
  const fromArena = pool.take(1024);
  assertStrictEquals(fromArena.buffer, arena.buffer);
  const fresh = [pool.take(1024), pool.take(1024), pool.take(1024)];
  for (const f of fresh) assertNotStrictEquals(f.buffer, arena.buffer);
  for (const f of fresh) pool.give(f);
  // Two fit in 2048 idle bytes; the third was left to the collector.
  const again = [pool.take(1024), pool.take(1024), pool.take(1024)];
  assertStrictEquals(again[0], fresh[1]);
  assertStrictEquals(again[1], fresh[0]);
  assert(!fresh.includes(again[2]!), "the third is a new array");
});

Deno.test("BufferPool always keeps arena buffers, whatever maxIdleBytes says", () => {
  const arena = new Uint8Array(2048);
  const pool = new BufferPool({ arena, maxIdleBytes: 0 });
  const a = pool.take(1024);
  const b = pool.take(1024);
  pool.give(a);
  pool.give(b);
  assertStrictEquals(pool.take(1024), b);
  assertStrictEquals(pool.take(1024), a);
  // Nothing fresh is kept with maxIdleBytes 0.
  const fresh = pool.take(1024);
  pool.give(fresh);
  assertNotStrictEquals(pool.take(1024), fresh);
});

Deno.test("BufferPool without an arena hands out fresh arrays and reuses them", () => {
  const pool = new BufferPool();
  const a = pool.take(4096);
  assertEquals(a.byteOffset, 0);
  assertEquals(a.buffer.byteLength, 4096);
  pool.give(a);
  assertStrictEquals(pool.take(4096), a);
});
