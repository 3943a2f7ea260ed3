import { formatAddr } from "../common/format_addr.ts";
import { errorMessage } from "../common/error_message.ts";

/** The line printed when the process may not use the network. */
export const NET_PERMISSION_MESSAGE =
  "Network access is not allowed: run with --allow-net (deno run --allow-net main.ts), or use deno task start";

/**
 * Turns a failure to listen into one line for the operator.
 *
 * @param err What `Deno.listen`, `Deno.listenTls` or `clearStaleSocket` threw.
 * @param addr Where the server tried to listen: a host and port, or a Unix socket's path.
 * @returns a one-line message that names the address and the cause.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { describeStartupError } from "./startup_error.ts";
 *
 * const err = new Deno.errors.AddrInUse("Address already in use (os error 98)");
 * assertEquals(
 *   describeStartupError(err, { hostname: "127.0.0.1", port: 8000 }),
 *   "Cannot listen on 127.0.0.1:8000: the address is already in use",
 * );
 * assertEquals(
 *   describeStartupError(err, { path: "/run/upcase.sock" }),
 *   "Cannot listen on unix:/run/upcase.sock: the path is in use by a running server",
 * );
 * ```
 */
export function describeStartupError(
  err: unknown,
  addr: { hostname: string; port: number } | { path: string },
): string {
  const unix = "path" in addr;
  if (err instanceof Deno.errors.NotCapable && !unix) {
    return NET_PERMISSION_MESSAGE;
  }
  const where = `Cannot listen on ${
    formatAddr(
      unix ? { transport: "unix", ...addr } : { transport: "tcp", ...addr },
    )
  }`;
  if (err instanceof Deno.errors.AddrInUse) {
    return unix
      ? `${where}: the path is in use by a running server`
      : `${where}: the address is already in use`;
  }
  if (err instanceof Deno.errors.AlreadyExists && unix) {
    return `${where}: the path exists and is not a socket; it is left as it is`;
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return `${where}: the address is not available on this machine`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return unix
      ? `${where}: permission denied by the file system`
      : `${where}: permission denied (ports below 1024 need privileges)`;
  }
  const message = errorMessage(err);
  return `${where}: ${message.split("\n")[0]}`;
}
