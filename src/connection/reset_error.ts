const RESET_NAMES = new Set([
  "ConnectionReset",
  "BrokenPipe",
  "ConnectionAborted",
]);
const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * Tells whether an error means the peer reset or broke the connection.
 *
 * @param err What a read or write threw.
 * @returns true for a reset, a broken pipe or an aborted connection.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isReset } from "./reset_error.ts";
 *
 * assert(isReset(new Deno.errors.ConnectionReset("reset by peer")));
 * assert(!isReset(new TypeError("bad")));
 * ```
 */
export function isReset(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return RESET_NAMES.has(err.name) ||
    (typeof code === "string" && RESET_CODES.has(code));
}
