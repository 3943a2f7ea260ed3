/**
 * The transport seam: the few things the server, the connection task, the
 * pump and the admin HTTP server need from a socket and a listener. Every
 * layer above src/transport/ sees only these, so an engine other than
 * `Deno.listen` (src/transport/deno/) can serve without touching them.
 *
 * `read` fills the caller's buffer, as `Deno.Conn.read` does, so that the
 * server decides where bytes land (its pooled buffers in the SIMD kernel's
 * memory) and a stalled client holds no data the server did not ask for. The
 * `node:net` engine reads on readiness: it points its handle's reads at the
 * waiting read's buffer, and stops reading while nobody reads (on TLS, whose
 * socket delivers events, it copies from what it queued).
 *
 * @module
 */
import type { TlsPem } from "../tls/pem.ts";

/** An address the server listens on. */
export type Addr = Deno.NetAddr | Deno.UnixAddr;

/** One accepted connection, as the layers above the transport use it. */
export interface Conn {
  /** The client's address; a Unix socket client has an empty path. */
  readonly remoteAddr: Deno.Addr;
  /** The server's own address for this connection. */
  readonly localAddr: Deno.Addr;
  /**
   * Reads into `buffer`.
   *
   * @returns how many bytes were read, or null at the end of the client's input.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /**
   * Writes from `bytes`, perhaps not all of them.
   *
   * @returns how many bytes were written.
   */
  write(bytes: Uint8Array): Promise<number>;
  /** Ends the server's output; the client can still send. */
  closeWrite(): Promise<void>;
  /** Closes both directions; a pending read or write then fails. */
  close(): void;
  /** Present on TLS connections: runs the handshake, which must come first. */
  handshake?(): Promise<unknown>;
}

/** A listening socket, whatever its engine and transport. */
export interface Listener {
  /** The bound address: the real port for TCP, the absolute path for Unix. */
  readonly addr: Addr;
  /** Waits for the next connection; rejects once the listener is closed. */
  accept(): Promise<Conn>;
  /** Stops listening; a Unix socket's file is removed. */
  close(): void;
  /**
   * Present on TLS listeners: listens with a new certificate from now on.
   *
   * @returns how long the port was closed for the swap, in milliseconds.
   */
  reloadTls?: (pem: TlsPem) => Promise<number>;
}

/** Where a listener listens: TCP, TCP with TLS, or a Unix socket. */
export type ListenTarget =
  | { transport: "tcp"; hostname: string; port: number; reusePort?: boolean }
  | {
    transport: "tls";
    hostname: string;
    port: number;
    pem: TlsPem;
    reusePort?: boolean;
  }
  | { transport: "unix"; path: string };
