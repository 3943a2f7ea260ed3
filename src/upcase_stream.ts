import { upcaseAsciiInPlace } from "./ascii_upcase.ts";
import { Utf8Upcaser } from "./unicode_upcase.ts";

/** Options for {@linkcode UpcaseStream}. */
export interface UpcaseStreamOptions {
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
  #bytesIn = 0;
  #bytesOut = 0;

  /**
   * Creates the stream.
   *
   * @param options How to map letters, and an optional tap on the input.
   */
  constructor(options: UpcaseStreamOptions = {}) {
    const { unicode = false, onChunk } = options;
    const utf8 = unicode ? new Utf8Upcaser() : undefined;
    super({
      transform: (chunk, controller) => {
        this.#bytesIn += chunk.length;
        onChunk?.(chunk);
        const out = utf8 ? utf8.push(chunk) : upcaseAsciiInPlace(chunk);
        if (out.length === 0) return;
        this.#bytesOut += out.length;
        controller.enqueue(out);
      },
      flush: (controller) => {
        const rest = utf8?.flush();
        if (!rest?.length) return;
        this.#bytesOut += rest.length;
        controller.enqueue(rest);
      },
    });
  }

  /** Bytes taken in so far. */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Bytes handed on so far. */
  get bytesOut(): number {
    return this.#bytesOut;
  }
}
