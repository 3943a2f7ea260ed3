/**
 * Marks one log line of a worker with the worker's id, so that the
 * supervisor's merged log says which process wrote it: a JSON line gets a
 * `"worker"` field, a text line a `[wN] ` prefix.
 *
 * @param line One whole line, without its newline.
 * @param id The worker's id, from 1.
 * @returns the tagged line, without a newline.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { tagWorkerLine } from "./worker_log.ts";
 *
 * assertEquals(tagWorkerLine("x [INFO] upcase.server: hi", 2), "[w2] x [INFO] upcase.server: hi");
 * assertEquals(JSON.parse(tagWorkerLine('{"message":"hi"}', 3)), { worker: 3, message: "hi" });
 * ```
 */
export function tagWorkerLine(line: string, id: number): string {
  // Spliced rather than parsed and re-serialised: the worker already did
  // that work, and a line that only looks like JSON still stays intact.
  if (line.startsWith("{") && line.endsWith("}")) {
    return line === "{}"
      ? `{"worker":${id}}`
      : `{"worker":${id},${line.slice(1)}`;
  }
  return `[w${id}] ${line}`;
}

/**
 * Splits a stream of text into whole lines and calls `onLine` for each, so
 * that lines from several workers never interleave mid-line. A last line
 * without a newline is passed on when the stream ends.
 *
 * @param readable The bytes, for example a child's stderr.
 * @param onLine Called once per line, without the newline.
 * @returns a promise that settles when the stream has ended.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { forEachLine } from "./worker_log.ts";
 *
 * const lines: string[] = [];
 * const body = new Blob(["a\nb", "c\n", "d"]).stream();
 * await forEachLine(body, (l) => void lines.push(l));
 * assertEquals(lines, ["a", "bc", "d"]);
 * ```
 */
export async function forEachLine(
  readable: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  // Decoded here rather than through a TextDecoderStream: the supervisor's
  // messages come a few bytes at a time, and a stream stage per chunk
  // costs more than the work.
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of readable) {
    buffered += decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl;
    while ((nl = buffered.indexOf("\n", start)) >= 0) {
      onLine(buffered.slice(start, nl));
      start = nl + 1;
    }
    buffered = buffered.slice(start);
  }
  buffered += decoder.decode();
  if (buffered) onLine(buffered);
}
