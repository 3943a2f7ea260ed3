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
import { errorMessage } from "../common/error_message.ts";
import {
  classifyFailure,
  type Failure,
  type Phase,
} from "./classify_failure.ts";
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

/** A connection that was served, until it ended for `reason`. */
export interface ServedResult extends ConnectionResult {
  /** Tells it from a {@linkcode RejectedResult}. */
  outcome: "served";
}

/**
 * A connection closed before it was served: its PROXY header was malformed,
 * late or cut short, or the real client was over the per-address limit. It
 * logs no "closed" line.
 */
export interface RejectedResult {
  /** Tells it from a {@linkcode ServedResult}. */
  outcome: "rejected";
  /** Why it was turned away. */
  reason: TaskRejectReason;
  /** What was wrong, for the log. */
  detail: string;
}

/** How a {@linkcode ConnectionTask} ended. */
export type TaskResult = ServedResult | RejectedResult;

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
  #phase: Phase;
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
    this.#phase = conn.handshake ? "handshake" : proxy ? "header" : "data";
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
  ): Promise<Uint8Array | RejectedResult> {
    const read = await readProxyHeader(this.#conn, {
      timeout: this.#handshakeTimeout,
    });
    if (read.status === "rejected") {
      return { outcome: "rejected", reason: read.reason, detail: read.detail };
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
      return {
        outcome: "rejected",
        reason: "refused",
        detail: "over the per-address limit",
      };
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
  async #handshake(handshake: () => Promise<unknown>): Promise<void> {
    const ms = this.#handshakeTimeout;
    const cancel = ms > 0
      ? setLongTimeout(() => this.cut("handshake_timeout"), ms)
      : () => {};
    try {
      await handshake();
    } finally {
      cancel();
    }
  }

  // One async frame waits under the pump's for as long as the connection
  // lives: a frame more per connection costs idle memory (about 0.5 KB).
  async #run(): Promise<TaskResult> {
    let ending: Failure | RejectedResult;
    try {
      const opened = this.#phase === "data" ? undefined : await this.#open();
      if (opened !== undefined && !(opened instanceof Uint8Array)) {
        ending = opened;
      } else {
        await pumpConn(this.#conn, {
          upcaser: this.#upcaser,
          ...(opened ? { initial: opened } : {}),
        });
        ending = { outcome: "ended", reason: "eof" };
      }
    } catch (err) {
      ending = classifyFailure(err, {
        phase: this.#phase,
        cut: this.#cutReason,
      });
    } finally {
      this.#close();
    }
    return ending.outcome === "ended"
      ? this.#ended(ending)
      : this.#rejected(ending);
  }

  // The phases before the data: the TLS handshake, then the PROXY header.
  // Deno would run a TLS handshake inside the first read anyway; done
  // first, its failure (a client speaking plain TCP, a wrong certificate) is
  // logged as what it is. Returns the bytes after the header, if any, or
  // why the connection is turned away.
  async #open(): Promise<Uint8Array | undefined | RejectedResult> {
    const conn = this.#conn;
    if (conn.handshake) {
      await this.#handshake(() => conn.handshake!());
      this.#phase = this.#proxy ? "header" : "data";
    }
    if (!this.#proxy) return undefined;
    const got = await this.#readHeader(this.#proxy);
    if (got instanceof Uint8Array) this.#phase = "data";
    return got;
  }

  #rejected(rejected: RejectedResult): RejectedResult {
    const { id, peer } = this;
    // Refusals are logged by the server, at most once a second.
    if (rejected.reason !== "refused") {
      log.warning(
        "connection {id} from {peer} rejected ({reason}): {detail}",
        { id, peer, reason: rejected.reason, detail: rejected.detail },
      );
    }
    return rejected;
  }

  #ended(ending: Failure & { outcome: "ended" }): ServedResult {
    const { reason } = ending;
    const { id, peer, bytesIn, bytesOut } = this;
    const durationMs = Math.round((performance.now() - this.startedAt) * 10) /
      10;
    log.info(
      "connection {id} closed ({reason}): {bytesIn} bytes in, {bytesOut} bytes out, {durationMs} ms, peer {peer}",
      { id, peer, bytesIn, bytesOut, durationMs, reason },
    );
    if (reason === "error") {
      log.warning(
        this.#phase === "handshake"
          ? "connection {id} failed in the TLS handshake: {error}"
          : "connection {id} failed: {error}",
        { id, error: errorMessage(ending.error) },
      );
    }
    return {
      outcome: "served",
      bytesIn,
      bytesOut,
      reason,
      ...(reason === "error" ? { error: ending.error } : {}),
    };
  }
}
