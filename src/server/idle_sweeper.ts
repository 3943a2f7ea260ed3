/** What the sweeper needs of a connection. */
export interface Watched {
  /** Bytes received so far. */
  readonly bytesIn: number;
  /** Bytes sent so far. */
  readonly bytesOut: number;
  /** Closes the connection because it sat idle. */
  cut(reason: "idle"): void;
}

interface Entry {
  total: number;
  movedAt: number;
}

/**
 * Closes connections on which no byte has moved, in either direction, for
 * `timeout` milliseconds. It samples the byte counters on one timer for all
 * connections instead of arming a timer per read, so the data path pays
 * nothing; a connection is cut between `timeout` and `timeout` plus one
 * sweep interval after its last byte.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IdleSweeper } from "./idle_sweeper.ts";
 *
 * let now = 0;
 * const sweeper = new IdleSweeper(1000, () => now);
 * const cuts: string[] = [];
 * const conn = { bytesIn: 0, bytesOut: 0, cut: (r: string) => void cuts.push(r) };
 * sweeper.add(conn);
 * now = 999;
 * sweeper.sweep();
 * assertEquals(cuts, []);
 * now = 1000;
 * sweeper.sweep();
 * assertEquals(cuts, ["idle"]);
 * ```
 */
export class IdleSweeper {
  readonly #timeout: number;
  readonly #now: () => number;
  readonly #entries = new Map<Watched, Entry>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * Creates a sweeper; call {@linkcode IdleSweeper.start} to run it on a timer.
   *
   * @param timeout Milliseconds without traffic before a connection is cut;
   * 0 only watches, for {@linkcode IdleSweeper.lastActiveAt}.
   * @param now The clock, in milliseconds; replaceable for tests.
   */
  constructor(timeout: number, now: () => number = () => performance.now()) {
    this.#timeout = timeout;
    this.#now = now;
  }

  /** Starts watching a connection. */
  add(conn: Watched): void {
    this.#entries.set(conn, {
      total: conn.bytesIn + conn.bytesOut,
      movedAt: this.#now(),
    });
  }

  /** Stops watching a connection. */
  delete(conn: Watched): void {
    this.#entries.delete(conn);
  }

  /**
   * When a byte last moved on a connection, as of the last sweep: the
   * status page's idle time, to within a sweep interval, with no clock read
   * on the data path.
   *
   * @returns `performance.now()` time, or undefined for a connection that is not watched.
   */
  lastActiveAt(conn: Watched): number | undefined {
    return this.#entries.get(conn)?.movedAt;
  }

  /** Checks every connection once, and cuts the ones idle for too long. */
  sweep(): void {
    const now = this.#now();
    for (const [conn, entry] of this.#entries) {
      const total = conn.bytesIn + conn.bytesOut;
      if (total !== entry.total) {
        entry.total = total;
        entry.movedAt = now;
      } else if (this.#timeout > 0 && now - entry.movedAt >= this.#timeout) {
        this.#entries.delete(conn);
        conn.cut("idle");
      }
    }
  }

  /** Sweeps on a timer, a quarter of the timeout apart (10 ms to 1 s). */
  start(): void {
    const interval = this.#timeout > 0
      ? Math.min(1000, Math.max(10, this.#timeout / 4))
      : 1000;
    this.#timer ??= setInterval(() => this.sweep(), interval);
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
