const encoder = new TextEncoder();

/** Where a {@linkcode LineQueue} writes: `Deno.stderr`, or a test's pipe. */
export interface LineSink {
  /** Writes some of `bytes`, as `Deno.FsFile.write` does. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Options for {@linkcode LineQueue}. */
export interface LineQueueOptions {
  /**
   * Bytes that may wait for the reader; lines beyond are dropped and
   * counted.
   *
   * @default {1048576}
   */
  maxBytes?: number;
  /**
   * Called once the reader has taken everything that waited, after lines
   * were dropped, with how many; the caller logs it (the line then queues
   * like any other).
   */
  onDropped?: (dropped: number) => void;
}

/**
 * Lines written in order by one asynchronous writer, so that a reader that
 * stalls (a pipe nobody drains, a blocked journald) never blocks the event
 * loop: writing to a full pipe synchronously would freeze every connection
 * and signal handling with it. What waits is bounded by `maxBytes`; past it,
 * lines are dropped and counted, and `onDropped` hears the count once the
 * reader is back. Lines queued while a write is in flight go out together
 * in the next write.
 *
 * @example Lines go out in order, and a full queue drops and counts
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { LineQueue } from "./line_queue.ts";
 *
 * let out = "";
 * const sink = {
 *   write(bytes: Uint8Array) {
 *     out += new TextDecoder().decode(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const drops: number[] = [];
 * const queue = new LineQueue(sink, {
 *   maxBytes: 8,
 *   onDropped: (n) => drops.push(n),
 * });
 * queue.push("one\n");
 * queue.push("two\n");
 * queue.push("three\n"); // over 8 bytes waiting: dropped
 * await queue.flush();
 * assertEquals(out, "one\ntwo\n");
 * assertEquals(drops, [1]);
 * ```
 */
export class LineQueue {
  readonly #sink: LineSink;
  readonly #maxBytes: number;
  readonly #onDropped: ((dropped: number) => void) | undefined;
  #waiting: Uint8Array[] = [];
  #waitingBytes = 0;
  #dropped = 0;
  #writing: Promise<void> | undefined;

  /**
   * Creates an empty queue.
   *
   * @param sink Where lines go.
   * @param options The bound, and who hears about drops.
   */
  constructor(sink: LineSink, options: LineQueueOptions = {}) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024;
    this.#onDropped = options.onDropped;
  }

  /** Lines dropped since the last report. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Queues a line, or drops it when `maxBytes` already wait.
   *
   * @param line The whole line, with its newline.
   */
  push(line: string): void {
    const bytes = encoder.encode(line);
    if (this.#waitingBytes + bytes.length > this.#maxBytes) {
      this.#dropped++;
      return;
    }
    this.#waiting.push(bytes);
    this.#waitingBytes += bytes.length;
    this.#writing ??= this.#drain();
  }

  /**
   * Waits until everything queued so far is written, or `timeoutMs` has
   * passed, whichever is first: before an exit, a stalled reader must not
   * keep the process alive.
   *
   * @param timeoutMs The most to wait.
   * @returns true when nothing is left waiting.
   */
  async flush(timeoutMs = 2000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    // A drain goes on until nothing waits, lines pushed meanwhile included.
    while (this.#writing) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      });
      await Promise.race([this.#writing, late]);
      clearTimeout(timer);
    }
    return true;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.length === 1
          ? this.#waiting[0]!
          : concat(this.#waiting, this.#waitingBytes);
        this.#waiting = [];
        this.#waitingBytes = 0;
        for (let done = 0; done < batch.length;) {
          done += await this.#sink.write(batch.subarray(done));
        }
        if (this.#waiting.length === 0 && this.#dropped > 0) {
          const dropped = this.#dropped;
          this.#dropped = 0;
          this.#onDropped?.(dropped);
        }
      }
    } catch {
      // The reader is gone for good (EPIPE): nothing can be written again,
      // and the server goes on without its log.
      this.#waiting = [];
      this.#waitingBytes = 0;
    } finally {
      this.#writing = undefined;
    }
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
