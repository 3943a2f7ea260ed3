/**
 * Formats an address for logs: `host:port`, with IPv6 hosts in brackets;
 * `unix:PATH` for a Unix socket, or just `unix` for a Unix client, which
 * has no path of its own.
 *
 * @param addr A network or Unix address.
 * @returns the printable form.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatAddr } from "./format_addr.ts";
 *
 * assertEquals(formatAddr({ transport: "tcp", hostname: "::1", port: 80 }), "[::1]:80");
 * assertEquals(formatAddr({ transport: "unix", path: "/run/upcase.sock" }), "unix:/run/upcase.sock");
 * ```
 */
export function formatAddr(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    return "path" in addr && addr.path
      ? `${addr.transport}:${addr.path}`
      : addr.transport;
  }
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
