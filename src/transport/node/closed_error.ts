/**
 * The error a read or write gets on a connection that was closed: the one
 * `Deno.Conn` gives, so that callers need not tell the transports apart.
 *
 * @returns a new `BadResource` error.
 *
 * @example
 * ```ts
 * import { assertInstanceOf } from "@std/assert";
 * import { connectionClosedError } from "./closed_error.ts";
 *
 * assertInstanceOf(connectionClosedError(), Deno.errors.BadResource);
 * ```
 */
export function connectionClosedError(): Error {
  return new Deno.errors.BadResource("the connection is closed");
}
