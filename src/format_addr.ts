/**
 * Formats an address for logs: `host:port`, with IPv6 hosts in brackets.
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
 * ```
 */
export function formatAddr(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    return "path" in addr && addr.path ? addr.path : addr.transport;
  }
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
