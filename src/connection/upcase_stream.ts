import { Upcaser, type UpcaserOptions } from "./upcaser.ts";

/** Options for {@linkcode UpcaseStream}. */
export type UpcaseStreamOptions = UpcaserOptions;

/**
 * A stream that uppercases what passes through it and counts the bytes.
 *
 * By default only ASCII letters change, byte by byte, so binary data is safe
 * and the output is exactly as long as the input. With `unicode`, UTF-8 text
 * gets full Unicode case mapping and invalid bytes pass through unchanged.
 *
 * Chunks are changed in place where possible: do not reuse a chunk after
 * writing it to this stream.
 *
 * @example Uppercase and count
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { UpcaseStream } from "./upcase_stream.ts";
 *
 * const upcase = new UpcaseStream({ unicode: true });
 * const text = await new Response(
 *   ReadableStream.from([new TextEncoder().encode("straße")])
 *     .pipeThrough(upcase),
 * ).text();
 * assertEquals(text, "STRASSE");
 * assertEquals([upcase.bytesIn, upcase.bytesOut], [7, 7]);
 * ```
 */
export class UpcaseStream extends TransformStream<Uint8Array, Uint8Array> {
  readonly #upcaser: Upcaser;

  /**
   * Creates the stream.
   *
   * @param options How to map letters, and an optional tap on the input.
   */
  constructor(options: UpcaseStreamOptions = {}) {
    const upcaser = new Upcaser(options);
    super({
      transform: (chunk, controller) => upcaser.transform(chunk, controller),
      flush: (controller) => upcaser.flush(controller),
    });
    this.#upcaser = upcaser;
  }

  /** Bytes taken in so far. */
  get bytesIn(): number {
    return this.#upcaser.bytesIn;
  }

  /** Bytes handed on so far. */
  get bytesOut(): number {
    return this.#upcaser.bytesOut;
  }
}
