import type { CloseReason, ConnectionResult } from "../connection/result.ts";
import {
  PROXY_REJECT_REASONS,
  type ProxyRejectReason,
} from "../proxy/header_reader.ts";

/** Upper bounds, in seconds, of the connection-duration histogram's buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.001,
  0.01,
  0.1,
  1,
  10,
  60,
  300,
  3600,
];

const REASONS: readonly CloseReason[] = [
  "eof",
  "reset",
  "shutdown",
  "idle",
  "handshake_timeout",
  "error",
];

/** One open connection, as the status page and metrics show it. */
export interface ConnectionInfo {
  /** The connection's id in the logs. */
  id: number;
  /** The peer's address. */
  peer: string;
  /** Seconds since it was accepted. */
  ageSeconds: number;
  /** Bytes received so far. */
  bytesIn: number;
  /** Bytes sent so far. */
  bytesOut: number;
  /** Seconds since the last byte arrived (or since it opened). */
  idleSeconds: number;
}

/** What a live connection tells the statistics. */
export interface LiveConnection {
  /** The connection's id in the logs. */
  readonly id: number;
  /** The peer's address. */
  readonly peer: string;
  /** When it was accepted, in `performance.now()` time. */
  readonly startedAt: number;
  /** When its last chunk arrived, in `performance.now()` time. */
  readonly lastActiveAt: number;
  /** Bytes received so far. */
  readonly bytesIn: number;
  /** Bytes sent so far. */
  readonly bytesOut: number;
}

/** A snapshot of a server's state and totals since it started. */
export interface StatsSnapshot {
  /**
   * Connections open now, listed; with `--workers`, the supervisor lists
   * only the first few (see `open`).
   */
  active: ConnectionInfo[];
  /** How many connections are open now, whether listed or not. */
  open: number;
  /** Connections closed so far, by reason. */
  closed: Record<CloseReason, number>;
  /**
   * Connections the listener handed over so far, whatever became of them:
   * the sum of those open, closed, refused and rejected for their PROXY
   * header.
   */
  accepted: number;
  /** Connections refused over the per-address limit. */
  refused: number;
  /** Connections closed unserved for their PROXY header, by reason. */
  proxyRejected: Record<ProxyRejectReason, number>;
  /** Bytes received, from closed and open connections. */
  bytesIn: number;
  /** Bytes sent, from closed and open connections. */
  bytesOut: number;
  /** Failed accepts, by error code. */
  acceptErrors: Record<string, number>;
  /** Closed connections' durations: cumulative counts per bucket of {@linkcode DURATION_BUCKETS}, then +Inf. */
  durationCounts: number[];
  /** Sum of closed connections' durations, in seconds. */
  durationSum: number;
  /** Whether the server is draining after a shutdown began. */
  draining: boolean;
  /** Whether the server has paused accepting at its connection limit. */
  paused: boolean;
  /**
   * Connections accepted and waiting, unread, for a slot under limits shared
   * with other processes (`--workers`); without them, clients over
   * `--max-connections` wait in the kernel's backlog, where they cannot be
   * counted, and this is 0.
   */
  waiting: number;
  /** Seconds since the server started. */
  uptimeSeconds: number;
  /**
   * The event loop's worst lag in the last 10 s, in seconds: how late any
   * connection was served (see `LoopLag`); with `--workers`, the worst
   * worker's.
   */
  eventLoopLagSeconds: number;
  /** The event loop's worst lag since the server started, in seconds. */
  eventLoopLagMaxSeconds: number;
}

/** Where a snapshot reads the event loop's lag, such as a `LoopLag`. */
export interface LagReading {
  /** The worst lag of the last few seconds. */
  readonly recentSeconds: number;
  /** The worst lag since it started. */
  readonly maxSeconds: number;
}

/**
 * Counts what a server does, for the admin endpoint: connections by how
 * they closed, bytes, failed accepts, and connection durations. Closed
 * connections are folded into totals; open ones are read live at each
 * snapshot, so the byte counters move while a stream runs.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ServerStats } from "./stats.ts";
 *
 * const stats = new ServerStats(() => 2000);
 * stats.closed({ bytesIn: 5, bytesOut: 5, reason: "eof" }, 0.5);
 * stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
 * const snap = stats.snapshot([]);
 * assertEquals([snap.closed.eof, snap.bytesIn, snap.acceptErrors.EMFILE], [1, 5, 1]);
 * ```
 */
export class ServerStats {
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #closed = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<
    CloseReason,
    number
  >;
  readonly #durations = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  #durationSum = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #accepted = 0;
  #acceptErrors: Record<string, number> = {};
  readonly #proxyRejected = Object.fromEntries(
    PROXY_REJECT_REASONS.map((r) => [r, 0]),
  ) as Record<ProxyRejectReason, number>;
  /** Connections refused over the per-address limit. */
  refused = 0;
  /** Whether the server is draining. */
  draining = false;
  /** Whether the server has paused accepting at its connection limit. */
  paused = false;
  /** Connections accepted and waiting for a shared limit's slot. */
  waiting = 0;
  /** The event loop's lag; without one, snapshots say 0. */
  lag: LagReading | undefined;

  /**
   * Starts counting.
   *
   * @param now The clock, in milliseconds; replaceable for tests.
   */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#startedAt = now();
  }

  /** Counts an accepted connection. */
  accepted(): void {
    this.#accepted++;
  }

  /**
   * Folds a closed connection into the totals.
   *
   * @param result How it ended, with its byte counts.
   * @param seconds How long it was open.
   */
  closed(result: ConnectionResult, seconds: number): void {
    this.#closed[result.reason]++;
    this.#bytesIn += result.bytesIn;
    this.#bytesOut += result.bytesOut;
    this.#durationSum += seconds;
    const bucket = DURATION_BUCKETS.findIndex((le) => seconds <= le);
    this.#durations[bucket < 0 ? DURATION_BUCKETS.length : bucket]!++;
  }

  /**
   * Counts a connection closed unserved for its PROXY header.
   *
   * @param reason An untrusted source, or a header that was malformed, late
   * or cut short.
   */
  proxyRejected(reason: ProxyRejectReason): void {
    this.#proxyRejected[reason]++;
  }

  /**
   * Counts a failed accept by its error code.
   *
   * @param err What `accept()` threw.
   */
  acceptFailed(err: unknown): void {
    const code = (err as { code?: unknown })?.code;
    const key = typeof code === "string"
      ? code
      : err instanceof Error
      ? err.name
      : "unknown";
    this.#acceptErrors[key] = (this.#acceptErrors[key] ?? 0) + 1;
  }

  /**
   * Takes a snapshot.
   *
   * @param live The connections open now.
   * @returns the totals, with the open connections' bytes included.
   */
  snapshot(live: Iterable<LiveConnection>): StatsSnapshot {
    const now = this.#now();
    const active: ConnectionInfo[] = [];
    let bytesIn = this.#bytesIn;
    let bytesOut = this.#bytesOut;
    for (const c of live) {
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
      active.push({
        id: c.id,
        peer: c.peer,
        ageSeconds: (now - c.startedAt) / 1000,
        bytesIn: c.bytesIn,
        bytesOut: c.bytesOut,
        idleSeconds: (now - c.lastActiveAt) / 1000,
      });
    }
    let cumulative = 0;
    return {
      active,
      open: active.length,
      closed: { ...this.#closed },
      accepted: this.#accepted,
      refused: this.refused,
      proxyRejected: { ...this.#proxyRejected },
      bytesIn,
      bytesOut,
      acceptErrors: { ...this.#acceptErrors },
      durationCounts: this.#durations.map((n) => cumulative += n),
      durationSum: this.#durationSum,
      draining: this.draining,
      paused: this.paused,
      waiting: this.waiting,
      uptimeSeconds: (now - this.#startedAt) / 1000,
      eventLoopLagSeconds: this.lag?.recentSeconds ?? 0,
      eventLoopLagMaxSeconds: this.lag?.maxSeconds ?? 0,
    };
  }
}
