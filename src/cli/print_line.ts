/**
 * Writes one line to stdout or stderr synchronously and whole: for the
 * usage text, the version, and the one-line errors before logging is set
 * up, which must be out before the process exits.
 *
 * @param stream `Deno.stdout` or `Deno.stderr`.
 * @param line The line, without its newline.
 */
export function printLine(stream: typeof Deno.stdout, line: string): void {
  let bytes = new TextEncoder().encode(`${line}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
