import { setLongTimeout } from "../common/long_timeout.ts";
import { parseProxyHeader, type ProxyHeader } from "./proxy_protocol.ts";
import type { Conn } from "../transport/types.ts";
import { appendBytes } from "../common/append_bytes.ts";

/** Why a connection that should start with a PROXY header was turned away. */
export type ProxyRejectReason = "untrusted" | "invalid" | "timeout" | "closed";

/** Every {@linkcode ProxyRejectReason}, in the order metrics list them. */
export const PROXY_REJECT_REASONS: readonly ProxyRejectReason[] = [
  "untrusted",
  "invalid",
  "timeout",
  "closed",
];

/** The outcome of {@linkcode readProxyHeader}. */
export type ProxyRead =
  | {
    status: "ok";
    header: ProxyHeader;
    /** Bytes that arrived after the header: the client's first data. */
    rest: Uint8Array;
  }
  | {
    status: "rejected";
    reason: Exclude<ProxyRejectReason, "untrusted">;
    /** What went wrong, for the log. */
    detail: string;
  };

/** Options for {@linkcode readProxyHeader}. */
export interface ReadProxyHeaderOptions {
  /**
   * Milliseconds the whole header may take to arrive; 0 for no deadline.
   *
   * @default {10000}
   */
  timeout?: number;
}

// Reads stay small because a header is short (v1 at most 107 bytes, a v2
// header from HAProxy a few dozen), and what comes after it is the client's
// data, which the pump reads with its own buffers.
const READ_SIZE = 512;
/**
 * The most a header can hold: v2's 16 fixed bytes and a 16-bit length. A v1
 * header is cut off far sooner, at 107 bytes, by the parser.
 */
export const PROXY_HEADER_MAX_LENGTH = 16 + 65535;

/**
 * Reads a PROXY protocol header (v1 or v2) from the start of a connection,
 * in small reads, until it is complete, malformed, cut short by the client,
 * or late. The connection is left open either way: the caller closes it on
 * a rejection, which also ends a read still pending after a timeout.
 *
 * @param conn The connection, as accepted from the load balancer.
 * @param options The deadline.
 * @returns the header and the bytes after it, or why it was rejected.
 * @throws what a read throws, such as a reset.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readProxyHeader } from "./header_reader.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using server = await listener.accept();
 * await client.write(new TextEncoder().encode("PROXY TCP4 192.0.2.1 192.0.2.2 4000 80\r\nhi"));
 * const read = await readProxyHeader(server);
 * assertEquals(read.status === "ok" && read.header.source?.hostname, "192.0.2.1");
 * assertEquals(read.status === "ok" && new TextDecoder().decode(read.rest), "hi");
 * ```
 */
export async function readProxyHeader(
  conn: Conn,
  options: ReadProxyHeaderOptions = {},
): Promise<ProxyRead> {
  const { timeout = 10_000 } = options;
  let cancelTimer = () => {};
  const late = new Promise<"late">((resolve) => {
    if (timeout > 0) {
      cancelTimer = setLongTimeout(() => resolve("late"), timeout);
    }
  });
  let received = new Uint8Array(0);
  try {
    // Each pass adds at least one byte, and the parser decides by
    // PROXY_HEADER_MAX_LENGTH at the latest, so the loop is bounded.
    for (;;) {
      const parsed = parseProxyHeader(received);
      if (parsed.status === "ok") {
        return {
          status: "ok",
          header: parsed.header,
          rest: received.slice(parsed.length),
        };
      }
      if (parsed.status === "invalid") {
        return { status: "rejected", reason: "invalid", detail: parsed.reason };
      }
      if (received.length >= PROXY_HEADER_MAX_LENGTH) {
        return {
          status: "rejected",
          reason: "invalid",
          detail: `header longer than ${PROXY_HEADER_MAX_LENGTH} bytes`,
        };
      }
      const buffer = new Uint8Array(READ_SIZE);
      const read = conn.read(buffer);
      // After a timeout the caller closes the connection, which rejects this.
      read.catch(() => {});
      const n = await Promise.race([read, late]);
      if (n === "late") {
        return {
          status: "rejected",
          reason: "timeout",
          detail: `no complete header within ${timeout} ms (${
            describe(received)
          })`,
        };
      }
      if (n === null) {
        return {
          status: "rejected",
          reason: "closed",
          detail: `the connection closed before the header was complete (${
            describe(received)
          })`,
        };
      }
      received = appendBytes(received, buffer.subarray(0, n));
    }
  } finally {
    cancelTimer();
  }
}

function describe(received: Uint8Array): string {
  return `${received.length} bytes received`;
}
