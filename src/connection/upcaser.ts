import { upcaseAsciiInPlace } from "../kernels/upcase_ascii.ts";
import { Utf8Upcaser } from "../kernels/unicode_upcase.ts";

/** Options for {@linkcode Upcaser}. */
export interface UpcaserOptions {
  /**
   * Map letters with full Unicode case rules instead of ASCII only.
   *
   * @default {false}
   */
  unicode?: boolean;
  /** Called with each chunk as it arrives, before it is changed. */
  onChunk?: (chunk: Uint8Array) => void;
}

/**
 * The uppercasing step of a stream, as a `Transformer` that counts the bytes
 * it takes in and hands on. {@linkcode UpcaseStream} is this inside a
 * `TransformStream`; the socket path calls {@linkcode Upcaser.push} directly,
 * so that a chunk costs no stream promises.
 *
 * Chunks are changed in place where possible: do not reuse a chunk after
 * passing it in.
 *
 * @example Uppercase chunk by chunk
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Upcaser } from "./upcaser.ts";
 *
 * const upcaser = new Upcaser();
 * const out = upcaser.push(new TextEncoder().encode("hi!"));
 * assertEquals(new TextDecoder().decode(out), "HI!");
 * assertEquals([upcaser.bytesIn, upcaser.bytesOut], [3, 3]);
 * ```
 */
export class Upcaser implements Transformer<Uint8Array, Uint8Array> {
  /** Bytes taken in so far. */
  bytesIn = 0;
  /** Bytes handed on so far. */
  bytesOut = 0;
  /**
   * The most bytes out per byte in: 1 in ASCII mode; 3 in unicode mode,
   * where `ΐ` (U+0390, 2 bytes) uppercases to 3 code points, 6 bytes.
   */
  readonly maxGrowth: number;
  readonly #utf8: Utf8Upcaser | undefined;
  readonly #onChunk: ((chunk: Uint8Array) => void) | undefined;

  /**
   * Creates the step.
   *
   * @param options How to map letters, and an optional tap on the input.
   */
  constructor(options: UpcaserOptions = {}) {
    this.#utf8 = options.unicode ? new Utf8Upcaser() : undefined;
    this.maxGrowth = options.unicode ? 3 : 1;
    this.#onChunk = options.onChunk;
  }

  /**
   * Uppercases the next chunk.
   *
   * @param chunk The next bytes of the input; it may be changed in place.
   * @returns the output so far, possibly `chunk` itself; it may be empty
   * while a multibyte character is cut in unicode mode. Any other array it
   * returns is the caller's alone, to keep or to free.
   */
  push(chunk: Uint8Array): Uint8Array {
    this.bytesIn += chunk.length;
    this.#onChunk?.(chunk);
    const out = this.#utf8 ? this.#utf8.push(chunk) : upcaseAsciiInPlace(chunk);
    this.bytesOut += out.length;
    return out;
  }

  /**
   * Ends the input.
   *
   * @returns what was held back, as it came: an unfinished UTF-8 sequence
   * in unicode mode, or an empty array.
   */
  finish(): Uint8Array {
    const rest = this.#utf8?.flush() ?? new Uint8Array(0);
    this.bytesOut += rest.length;
    return rest;
  }

  /** The `Transformer` hook: pushes a chunk into the stream. */
  transform(
    chunk: Uint8Array,
    controller: TransformStreamDefaultController<Uint8Array>,
  ): void {
    const out = this.push(chunk);
    if (out.length > 0) controller.enqueue(out);
  }

  /** The `Transformer` hook: ends the stream. */
  flush(controller: TransformStreamDefaultController<Uint8Array>): void {
    const rest = this.finish();
    if (rest.length > 0) controller.enqueue(rest);
  }
}
