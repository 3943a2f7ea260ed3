/** Options for {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /**
   * Memory to carve buffers from before falling back to fresh arrays, such
   * as the WebAssembly memory that the SIMD kernel works on in place.
   */
  arena?: Uint8Array | undefined;
  /**
   * Bytes that fresh arrays may keep on the free lists; beyond it, returned
   * buffers are left to the garbage collector.
   *
   * @default {8388608}
   */
  maxIdleBytes?: number;
}

/**
 * Read buffers in a few sizes, reused instead of allocated per read. The
 * sizes are powers of two; a request is rounded up to one of them.
 *
 * Buffers cut from the arena are never dropped: they go back on their free
 * list, so the arena's space is reused and never leaks.
 *
 * @example Reuse a buffer
 * ```ts
 * import { assertEquals, assertStrictEquals } from "@std/assert";
 * import { BufferPool } from "./buffer_pool.ts";
 *
 * const pool = new BufferPool({ arena: new Uint8Array(4096) });
 * const a = pool.take(1000);
 * assertEquals(a.length, 1024);
 * pool.give(a);
 * assertStrictEquals(pool.take(1024), a);
 * ```
 */
export class BufferPool {
  readonly #free = new Map<number, Uint8Array[]>();
  readonly #arena: Uint8Array | undefined;
  #arenaUsed = 0;
  readonly #maxIdleBytes: number;
  #idleBytes = 0;

  /**
   * Creates an empty pool.
   *
   * @param options An arena to carve from, and how much fresh memory to keep.
   */
  constructor(options: BufferPoolOptions = {}) {
    this.#arena = options.arena;
    this.#maxIdleBytes = options.maxIdleBytes ?? 8 * 1024 * 1024;
  }

  /**
   * Hands out a buffer of at least `size` bytes, rounded up to a power of
   * two.
   *
   * @param size The bytes needed.
   * @returns a buffer that belongs to the caller until it is given back.
   */
  take(size: number): Uint8Array {
    const length = 2 ** Math.ceil(Math.log2(Math.max(size, 1)));
    const list = this.#free.get(length);
    const reused = list?.pop();
    if (reused) {
      if (reused.buffer !== this.#arena?.buffer) this.#idleBytes -= length;
      return reused;
    }
    const arena = this.#arena;
    // Aligned to 64 bytes (or its own size, when smaller), so that SIMD and
    // word loops start on a word.
    const start = Math.ceil(this.#arenaUsed / Math.min(length, 64)) *
      Math.min(length, 64);
    if (arena && start + length <= arena.length) {
      this.#arenaUsed = start + length;
      return arena.subarray(start, start + length);
    }
    return new Uint8Array(length);
  }

  /**
   * Takes a buffer back for reuse.
   *
   * @param buffer A buffer from {@linkcode BufferPool.take}, no longer used.
   */
  give(buffer: Uint8Array): void {
    const fromArena = buffer.buffer === this.#arena?.buffer;
    if (!fromArena) {
      if (this.#idleBytes + buffer.length > this.#maxIdleBytes) return;
      this.#idleBytes += buffer.length;
    }
    let list = this.#free.get(buffer.length);
    if (!list) this.#free.set(buffer.length, list = []);
    list.push(buffer);
  }
}
