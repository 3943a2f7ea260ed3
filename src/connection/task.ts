import { getLogger } from "@logtape/logtape";
import type { ConnectionResult, CutReason } from "./result.ts";
import { pumpConn } from "./pump.ts";
import { formatAddr } from "../common/format_addr.ts";
import { previewBytes } from "./preview.ts";
import {
  type ProxyRejectReason,
  readProxyHeader,
} from "../proxy/header_reader.ts";
import { setLongTimeout } from "../common/long_timeout.ts";
import { isReset } from "./reset_error.ts";
import { Upcaser } from "./upcaser.ts";
import type { Conn } from "../transport/types.ts";

const log = getLogger(["upcase", "conn"]);

/** Options for {@linkcode ConnectionTask}. */
export interface ConnectionTaskOptions {
  /** The connection's id in the logs. */
  id: number;
  /** Uppercase with full Unicode case rules. */
  unicode: boolean;
  /**
   * Milliseconds the TLS handshake or the PROXY header may take; 0 for no
   * deadline.
   */
  handshakeTimeout: number;
  /** Read a PROXY protocol header first, and serve the client it names. */
  proxy?: ConnectionProxyOptions;
}

/** How a {@linkcode ConnectionTask} reads a PROXY protocol header. */
export interface ConnectionProxyOptions {
  /**
   * Called once the header is read, with the real client's host (undefined
   * for a Unix socket peer under a LOCAL header); `false` closes the
   * connection unserved, as `refused`. This is where the per-address limit
   * applies, since only now is the real address known. With `--workers`
   * the answer comes later, from the supervisor.
   */
  admit: (host: string | undefined) => boolean | Promise<boolean>;
}

/** Why a task closed its connection without serving it. */
export type TaskRejectReason =
  | Exclude<ProxyRejectReason, "untrusted">
  | "refused";

/** How a {@linkcode ConnectionTask} ended. */
export interface TaskResult extends ConnectionResult {
  /**
   * Set when the connection was closed before it was served: its PROXY
   * header was malformed, late or cut short, or the real client was over
   * the per-address limit. Such a connection has no bytes and the reason
   * `error`, and logs no "closed" line.
   */
  rejected?: TaskRejectReason;
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
  #peer: string;
  #peerHost: string;
  #via: string | undefined;
  /** When the connection was accepted, in `performance.now()` time. */
  readonly startedAt: number = performance.now();
  /** Settles with the result once the connection is closed and logged. */
  readonly done: Promise<TaskResult>;
  readonly #upcaser: Upcaser;
  readonly #conn: Conn;
  readonly #proxy: ConnectionProxyOptions | undefined;
  readonly #handshakeTimeout: number;
  #cutReason: CutReason | undefined;
  #closed = false;

  /**
   * Starts serving `conn`.
   *
   * @param conn The accepted connection; it is closed when `done` settles.
   * @param options The connection's id and the case mode.
   */
  constructor(conn: Conn, options: ConnectionTaskOptions) {
    const { id, unicode, proxy, handshakeTimeout } = options;
    this.id = id;
    this.#handshakeTimeout = handshakeTimeout;
    const addr = conn.remoteAddr;
    this.#peer = formatAddr(addr);
    this.#peerHost = "hostname" in addr ? addr.hostname : this.#peer;
    this.#proxy = proxy;
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
    // Behind a load balancer the opening is logged once the header has
    // named the real client.
    if (!proxy) {
      log.info("connection {id} opened from {peer}", { id, peer: this.peer });
    }
    this.done = this.#run();
  }

  /**
   * The client's address, as `host:port`, or `unix` for a Unix socket
   * client. Behind a load balancer it is the real client's, once the PROXY
   * header has been read, and the balancer's until then.
   */
  get peer(): string {
    return this.#peer;
  }

  /** The client's host, without the port. */
  get peerHost(): string {
    return this.#peerHost;
  }

  /** The load balancer's address, when a PROXY header named another client. */
  get via(): string | undefined {
    return this.#via;
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

  // Reads the PROXY header and takes the real client's address from it;
  // returns the bytes after it, or why the connection is turned away.
  async #readHeader(
    proxy: ConnectionProxyOptions,
  ): Promise<Uint8Array | { rejected: TaskRejectReason; detail: string }> {
    const read = await readProxyHeader(this.#conn, {
      timeout: this.#handshakeTimeout,
    });
    if (read.status === "rejected") {
      return { rejected: read.reason, detail: read.detail };
    }
    const { source } = read.header;
    // LOCAL (a balancer's own check) keeps the connection's own address.
    if (read.header.command === "proxy" && source) {
      this.#via = this.#peer;
      this.#peerHost = source.hostname;
      this.#peer = formatAddr({ transport: "tcp", ...source });
    }
    const addr = this.#conn.remoteAddr;
    const host = this.#via !== undefined || "hostname" in addr
      ? this.#peerHost
      : undefined;
    if (!(await proxy.admit(host))) {
      return { rejected: "refused", detail: "over the per-address limit" };
    }
    const { id, peer, via } = this;
    if (via === undefined) {
      log.info("connection {id} opened from {peer}", { id, peer });
    } else {
      log.info("connection {id} opened from {peer} via {via}", {
        id,
        peer,
        via,
      });
    }
    return read.rest;
  }

  // A client that opens TCP and never sends a ClientHello would otherwise
  // hold its slot until the idle sweep, or for good without one.
  async #handshake(conn: Deno.TlsConn): Promise<void> {
    const ms = this.#handshakeTimeout;
    const cancel = ms > 0
      ? setLongTimeout(() => this.cut("handshake_timeout"), ms)
      : () => {};
    try {
      await conn.handshake();
    } finally {
      cancel();
    }
  }

  async #run(): Promise<TaskResult> {
    let reason: ConnectionResult["reason"] = "eof";
    let error: unknown;
    let handshaking = false;
    let inHeader = false;
    let rejected: { rejected: TaskRejectReason; detail: string } | undefined;
    try {
      const conn = this.#conn;
      // Deno would run a TLS handshake inside the first read anyway; done
      // first, its failure (a client speaking plain TCP, a wrong
      // certificate) is logged as what it is.
      if ("handshake" in conn && typeof conn.handshake === "function") {
        handshaking = true;
        await this.#handshake(conn as Deno.TlsConn);
        handshaking = false;
      }
      let initial: Uint8Array | undefined;
      if (this.#proxy) {
        inHeader = true;
        const got = await this.#readHeader(this.#proxy);
        inHeader = false;
        if (got instanceof Uint8Array) initial = got;
        else rejected = got;
      }
      if (!rejected) {
        await pumpConn(conn, {
          upcaser: this.#upcaser,
          ...(initial ? { initial } : {}),
        });
      }
    } catch (err) {
      if (this.#cutReason) reason = this.#cutReason;
      // A reset before the header was complete is a header cut short.
      else if (inHeader) {
        rejected = {
          rejected: "closed",
          detail: `the header read failed: ${
            err instanceof Error ? err.message : String(err)
          }`,
        };
      } else if (isReset(err)) reason = "reset";
      // A TLS client that closed its socket without TLS's own goodbye
      // (close_notify), as many do and as health checks that only connect
      // do: to an echo server that is an end of input like any other.
      else if (err instanceof Deno.errors.UnexpectedEof) reason = "eof";
      else [reason, error] = ["error", err];
    } finally {
      this.#close();
    }
    if (rejected) {
      const { id, peer } = this;
      // Refusals are logged by the server, at most once a second.
      if (rejected.rejected !== "refused") {
        log.warning(
          "connection {id} from {peer} rejected ({reason}): {detail}",
          { id, peer, reason: rejected.rejected, detail: rejected.detail },
        );
      }
      return {
        bytesIn: 0,
        bytesOut: 0,
        reason: "error",
        error: new Error(rejected.detail),
        rejected: rejected.rejected,
      };
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
