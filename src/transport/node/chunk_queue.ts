/**
 * Bytes that arrived while no read waited, in order, until a read takes
 * them.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ChunkQueue } from "./chunk_queue.ts";
 *
 * const queue = new ChunkQueue();
 * queue.push(new Uint8Array([1, 2, 3]));
 * queue.push(new Uint8Array([4]));
 * const buffer = new Uint8Array(2);
 * assertEquals(queue.take(buffer), 2);
 * assertEquals([...buffer], [1, 2]);
 * assertEquals(queue.bytes, 2);
 * ```
 */
export class ChunkQueue {
  readonly #chunks: Uint8Array[] = [];
  /** How many bytes wait. */
  bytes = 0;

  /**
   * Adds a chunk at the end; it must not change while it waits.
   *
   * @param chunk The bytes.
   */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /**
   * Moves the oldest bytes into `buffer`, as many as fit.
   *
   * @param buffer Where they go.
   * @returns how many bytes were moved.
   */
  take(buffer: Uint8Array): number {
    const chunks = this.#chunks;
    let n = 0;
    while (n < buffer.length && chunks.length > 0) {
      const head = chunks[0]!;
      const count = Math.min(head.length, buffer.length - n);
      buffer.set(count === head.length ? head : head.subarray(0, count), n);
      n += count;
      if (count === head.length) chunks.shift();
      else chunks[0] = head.subarray(count);
    }
    this.bytes -= n;
    return n;
  }
}
