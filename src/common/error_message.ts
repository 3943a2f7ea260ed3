/**
 * The text to log or print for a caught value: an Error's message, or the
 * value itself as a string, since anything can be thrown.
 *
 * @param err What was caught.
 * @returns the message.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { errorMessage } from "./error_message.ts";
 *
 * assertEquals(errorMessage(new TypeError("Bad port")), "Bad port");
 * assertEquals(errorMessage("odd"), "odd");
 * ```
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
