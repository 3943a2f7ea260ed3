import { getLogger } from "@logtape/logtape";
import { setLongTimeout } from "../common/long_timeout.ts";
import type { ConnectionTask, TaskResult } from "../connection/task.ts";
import { clientKey } from "../proxy/ip_address.ts";
import type { Conn } from "../transport/types.ts";
import { closeQuietly } from "./admission_control.ts";
import { IdleSweeper } from "./idle_sweeper.ts";
import { LimitLog } from "./limit_log.ts";
import type { LiveConnection, ServerStats } from "./stats.ts";

const log = getLogger(["upcase", "server"]);

/** How a shutdown went. */
export interface DrainSummary {
  /** Connections that were open at shutdown and finished by themselves. */
  drained: number;
  /** Connections still open at the drain timeout, which were closed. */
  cut: number;
}

/** Options for {@linkcode Connections}. */
export interface ConnectionsOptions {
  /** Most open at once before accept pauses (0: no limit, or shared limits). */
  maxConnections: number;
  /** Milliseconds without traffic before a connection is cut (0: never). */
  idleTimeout: number;
  /** For the limit's warning: the bits of an IPv6 address that name a client. */
  ipv6Prefix: number;
  /** Where the server's state is shown. */
  stats: ServerStats;
}

/**
 * A server's connections: those served, those accepted and waiting for the
 * whole server's limits, the idle sweep over them, the wait for a free slot
 * at `maxConnections`, and the drain at shutdown.
 */
export class Connections {
  readonly #options: ConnectionsOptions;
  readonly #active = new Map<number, ConnectionTask>();
  // Accepted connections waiting for the shared limits, and since when.
  readonly #waiting = new Map<Conn, number>();
  readonly #sweeper: IdleSweeper;
  readonly #limitLog: LimitLog;
  #slotFreed: PromiseWithResolvers<void> | undefined;

  /**
   * Starts the idle sweep.
   *
   * @param options The limits and where to show the state.
   */
  constructor(options: ConnectionsOptions) {
    this.#options = options;
    // It also runs with no idle timeout, since it is what tracks the
    // status page's idle times, without a clock read per chunk.
    this.#sweeper = new IdleSweeper(options.idleTimeout);
    this.#sweeper.start();
    this.#limitLog = new LimitLog({
      logger: log,
      limit: options.maxConnections,
    });
  }

  /** How many connections are served now. */
  get size(): number {
    return this.#active.size;
  }

  /**
   * Tracks a connection being served, until its task is done.
   *
   * @param task The connection's task.
   * @param onDone Called with the result once it is done and no longer tracked.
   */
  track(task: ConnectionTask, onDone: (result: TaskResult) => void): void {
    this.#active.set(task.id, task);
    this.#sweeper.add(task);
    void task.done.then((result) => {
      this.#active.delete(task.id);
      this.#sweeper.delete(task);
      onDone(result);
      this.#slotFreed?.resolve();
      this.#slotFreed = undefined;
    });
  }

  /**
   * Holds an accepted connection, unread, until the limits answer.
   *
   * @param conn The connection.
   */
  hold(conn: Conn): void {
    this.#waiting.set(conn, performance.now());
    this.#options.stats.waiting = this.#waiting.size;
  }

  /**
   * Stops holding a connection.
   *
   * @param conn The connection.
   * @returns since when it waited, or undefined if the drain closed it meanwhile.
   */
  unhold(conn: Conn): number | undefined {
    const since = this.#waiting.get(conn);
    if (since === undefined) return undefined;
    this.#waiting.delete(conn);
    this.#options.stats.waiting = this.#waiting.size;
    return since;
  }

  /**
   * Closes a connection unserved at shutdown, like a client in the backlog
   * when the listener closes: counted as closed, with the reason `shutdown`.
   *
   * @param conn The connection.
   * @param since When it was accepted.
   */
  closeWaiting(conn: Conn, since: number): void {
    closeQuietly(conn);
    const seconds = (performance.now() - since) / 1000;
    this.#options.stats.closed(
      { bytesIn: 0, bytesOut: 0, reason: "shutdown" },
      seconds,
    );
  }

  /**
   * At `maxConnections`, a promise that settles once a slot is free.
   *
   * @param draining Aborted once the server shuts down.
   * @returns the promise, or undefined when there is room.
   */
  waitForCapacity(draining: AbortSignal): Promise<void> | undefined {
    const { maxConnections, stats } = this.#options;
    if (maxConnections === 0 || this.#active.size < maxConnections) {
      return undefined;
    }
    const limitLog = this.#limitLog;
    limitLog.reached(limitLog.pauses === 0 ? this.#busiestClient() : undefined);
    this.#slotFreed = Promise.withResolvers();
    stats.paused = true;
    return this.#slotFreed.promise.then(() => {
      stats.paused = false;
      if (!draining.aborted) limitLog.freed();
    });
  }

  /** The open connections, for a stats snapshot. */
  *live(): Iterable<LiveConnection> {
    for (const task of this.#active.values()) {
      const { id, peer, startedAt, bytesIn, bytesOut } = task;
      const lastActiveAt = this.#sweeper.lastActiveAt(task) ?? startedAt;
      yield { id, peer, startedAt, lastActiveAt, bytesIn, bytesOut };
    }
  }

  /**
   * Closes those waiting, lets the served ones finish until `timeout`, then
   * cuts the rest, and stops the sweep.
   *
   * @param timeout Milliseconds to wait; any length is waited out.
   * @returns how many finished and how many were cut.
   */
  async drain(timeout: number): Promise<DrainSummary> {
    for (const [conn, since] of this.#waiting) this.closeWaiting(conn, since);
    this.#waiting.clear();
    this.#options.stats.waiting = 0;
    const open = [...this.#active.values()];
    log.info(
      "shutting down: no longer accepting; draining {open} connections for up to {seconds} s",
      { open: open.length, seconds: timeout / 1000 },
    );
    let cancelTimer = () => {};
    const timedOut = new Promise<"timeout">((resolve) => {
      cancelTimer = setLongTimeout(() => resolve("timeout"), timeout);
    });
    const outcome = await Promise.race([
      Promise.all(open.map((t) => t.done)),
      timedOut,
    ]);
    cancelTimer();
    let cut = 0;
    if (outcome === "timeout") {
      const left = [...this.#active.values()];
      cut = left.length;
      for (const t of left) t.cut("shutdown");
      await Promise.all(left.map((t) => t.done));
    }
    this.#sweeper.stop();
    this.#limitLog[Symbol.dispose]();
    return { drained: open.length - cut, cut };
  }

  // Who fills the slots, for the limit's warning: the client (an IPv6 /64
  // as one) with the most open connections. Once per episode, so the scan
  // costs nothing under churn.
  #busiestClient(): string {
    const counts = new Map<string, number>();
    let top = "";
    let most = 0;
    for (const task of this.#active.values()) {
      const key = task.peerHost === "unix"
        ? "unix"
        : clientKey(task.peerHost, this.#options.ipv6Prefix);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n > most) [top, most] = [key, n];
    }
    return `${top} with ${most} of ${this.#active.size}`;
  }
}
