import { getLogger } from "@logtape/logtape";
import {
  type ConnectionResult,
  type CutReason,
  pipeConnection,
} from "./connection.ts";
import { readableFromConn } from "./conn_readable.ts";
import { formatAddr } from "./format_addr.ts";
import { previewBytes } from "./preview.ts";
import { UpcaseStream } from "./upcase_stream.ts";

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
  /** The peer's address, as `host:port`. */
  readonly peer: string;
  /** The peer's host, without the port. */
  readonly peerHost: string;
  /** When the connection was accepted, in `performance.now()` time. */
  readonly startedAt: number = performance.now();
  /** Settles with the result once the connection is closed and logged. */
  readonly done: Promise<ConnectionResult>;
  #stream: UpcaseStream;
  #cut = new AbortController();

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
    this.#stream = new UpcaseStream(
      onChunk ? { unicode, onChunk } : { unicode },
    );
    log.info("connection {id} opened from {peer}", { id, peer: this.peer });
    this.done = this.#run(conn);
  }

  /** Bytes received so far. */
  get bytesIn(): number {
    return this.#stream.bytesIn;
  }

  /** Bytes produced for the client so far. */
  get bytesOut(): number {
    return this.#stream.bytesOut;
  }

  /**
   * Closes the connection now; `done` then reports `reason`.
   *
   * @param reason Why the server cuts it.
   */
  cut(reason: CutReason): void {
    this.#cut.abort(reason);
  }

  async #run(conn: Deno.Conn): Promise<ConnectionResult> {
    let result: ConnectionResult;
    try {
      const duplex = {
        readable: readableFromConn(conn),
        writable: conn.writable,
      };
      result = await pipeConnection(duplex, {
        stream: this.#stream,
        signal: this.#cut.signal,
      });
    } catch (error) {
      result = {
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        reason: "error",
        error,
      };
    } finally {
      try {
        conn.close();
      } catch {
        // The finished pipe closed it already.
      }
    }
    const durationMs = Math.round((performance.now() - this.startedAt) * 10) /
      10;
    const { bytesIn, bytesOut, reason, error } = result;
    const { id, peer } = this;
    log.info(
      "connection {id} closed ({reason}): {bytesIn} bytes in, {bytesOut} bytes out, {durationMs} ms, peer {peer}",
      { id, peer, bytesIn, bytesOut, durationMs, reason },
    );
    if (reason === "error") {
      log.warning("connection {id} failed: {error}", {
        id,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    return result;
  }
}
