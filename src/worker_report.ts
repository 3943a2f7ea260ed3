const PREFIX = "upcase-worker-admin ";

/**
 * The line a worker prints on standard output once it serves, to tell the
 * supervisor the port of its own admin endpoint. Standard output rather
 * than a log line, so that it arrives whatever `--log-level` says.
 *
 * @param port The worker's admin port.
 * @returns the line, without a newline.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseWorkerReport, workerReport } from "./worker_report.ts";
 *
 * assertEquals(parseWorkerReport(workerReport(4711)), 4711);
 * assertEquals(parseWorkerReport("something else"), undefined);
 * ```
 */
export function workerReport(port: number): string {
  return `${PREFIX}${port}`;
}

/**
 * Reads the admin port out of a worker's {@linkcode workerReport} line.
 *
 * @param line One line of the worker's standard output.
 * @returns the port, or undefined if the line is something else.
 */
export function parseWorkerReport(line: string): number | undefined {
  if (!line.startsWith(PREFIX)) return undefined;
  const port = Number(line.slice(PREFIX.length));
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}
