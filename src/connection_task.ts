import { getLogger } from "@logtape/logtape";
import type { ConnectionResult, CutReason } from "./connection.ts";
import { pumpConn } from "./conn_pump.ts";
import { formatAddr } from "./format_addr.ts";
import { previewBytes } from "./preview.ts";
import { isReset } from "./reset_error.ts";
import { Upcaser } from "./upcaser.ts";

const log = getLogger(["upcase", "conn"]);

/** Options for {@linkcode ConnectionTask}. */
export interface ConnectionTaskOptions {
  /** The connection's id in the logs. */
  id: number;
  /** Uppercase with full Unicode case rules. */
  unicode: boolean;
}

/**
 * One accepted connection, served from start to end: it logs the opening,
 * pipes the data, closes the connection whatever happened, and logs how it
 * ended with its byte counts. Its `done` promise never rejects, so one
 * connection's failure stays with it. While it runs, its counters can be
 * read and it can be cut.
 */
export class ConnectionTask {
  /** The connection's id in the logs. */
  readonly id: number;
  /** The peer's address, as `host:port`, or `unix` for a Unix socket client. */
  readonly peer: string;
  /** The peer's host, without the port. */
  readonly peerHost: string;
  /** When the connection was accepted, in `performance.now()` time. */
  readonly startedAt: number = performance.now();
  /** Settles with the result once the connection is closed and logged. */
  readonly done: Promise<ConnectionResult>;
  readonly #upcaser: Upcaser;
  readonly #conn: Deno.Conn;
  #cutReason: CutReason | undefined;
  #closed = false;

  /**
   * Starts serving `conn`.
   *
   * @param conn The accepted connection; it is closed when `done` settles.
   * @param options The connection's id and the case mode.
   */
  constructor(conn: Deno.Conn, options: ConnectionTaskOptions) {
    const { id, unicode } = options;
    this.id = id;
    const addr = conn.remoteAddr;
    this.peer = formatAddr(addr);
    this.peerHost = "hostname" in addr ? addr.hostname : this.peer;
    // Decided once per connection, so that info level costs nothing per chunk.
    const onChunk = log.isEnabledFor("debug")
      ? (chunk: Uint8Array) =>
        log.debug("connection {id} received {bytes} bytes: {preview}", {
          id,
          bytes: chunk.length,
          preview: previewBytes(chunk),
        })
      : undefined;
    this.#upcaser = new Upcaser(onChunk ? { unicode, onChunk } : { unicode });
    this.#conn = conn;
    log.info("connection {id} opened from {peer}", { id, peer: this.peer });
    this.done = this.#run();
  }

  /** Bytes received so far. */
  get bytesIn(): number {
    return this.#upcaser.bytesIn;
  }

  /** When the last chunk arrived, or the connection opened, in `performance.now()` time. */
  get lastActiveAt(): number {
    return this.#upcaser.lastActiveAt || this.startedAt;
  }

  /** Bytes produced for the client so far. */
  get bytesOut(): number {
    return this.#upcaser.bytesOut;
  }

  /**
   * Closes the connection now; `done` then reports `reason`.
   *
   * @param reason Why the server cuts it.
   */
  cut(reason: CutReason): void {
    if (this.#closed) return;
    this.#cutReason = reason;
    // The pending read or write then fails, and #run reports the reason.
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  async #run(): Promise<ConnectionResult> {
    let reason: ConnectionResult["reason"] = "eof";
    let error: unknown;
    let handshaking = false;
    try {
      const conn = this.#conn;
      // Deno would run a TLS handshake inside the first read anyway; done
      // first, its failure (a client speaking plain TCP, a wrong
      // certificate) is logged as what it is.
      if ("handshake" in conn && typeof conn.handshake === "function") {
        handshaking = true;
        await (conn as Deno.TlsConn).handshake();
        handshaking = false;
      }
      await pumpConn(conn, { upcaser: this.#upcaser });
    } catch (err) {
      if (this.#cutReason) reason = this.#cutReason;
      else if (isReset(err)) reason = "reset";
      // A TLS client that closed its socket without TLS's own goodbye
      // (close_notify), as many do and as health checks that only connect
      // do: to an echo server that is an end of input like any other.
      else if (err instanceof Deno.errors.UnexpectedEof) reason = "eof";
      else [reason, error] = ["error", err];
    } finally {
      this.#close();
    }
    const result: ConnectionResult = {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      reason,
      ...(reason === "error" ? { error } : {}),
    };
    const durationMs = Math.round((performance.now() - this.startedAt) * 10) /
      10;
    const { bytesIn, bytesOut } = result;
    const { id, peer } = this;
    log.info(
      "connection {id} closed ({reason}): {bytesIn} bytes in, {bytesOut} bytes out, {durationMs} ms, peer {peer}",
      { id, peer, bytesIn, bytesOut, durationMs, reason },
    );
    if (reason === "error") {
      log.warning(
        handshaking
          ? "connection {id} failed in the TLS handshake: {error}"
          : "connection {id} failed: {error}",
        {
          id,
          error: error instanceof Error ? error.message : String(error),
        },
      );
    }
    return result;
  }
}
