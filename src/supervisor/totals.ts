import { ServerStats, type StatsSnapshot } from "../server/stats.ts";
import { mergeSnapshots } from "./merge.ts";
import type { WorkerStats } from "./worker_protocol.ts";

// What an exited worker leaves in the totals: its counters, none of its
// gauges (its lag included: the workers serving now are the ones that make
// clients wait).
function countersOnly(last: StatsSnapshot): StatsSnapshot {
  return {
    ...last,
    active: [],
    open: 0,
    draining: false,
    paused: false,
    waiting: 0,
    uptimeSeconds: 0,
    eventLoopLagSeconds: 0,
    eventLoopLagMaxSeconds: 0,
  };
}

/**
 * The whole server's totals, from each worker's last answer: a worker that
 * answers late, or not at all, still counts with what it last said, and a
 * worker that exits leaves its counters behind, so that no counter ever
 * goes down (Prometheus would take a fall for a reset). Its gauges (open
 * connections, waiting clients) leave with it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ServerStats } from "../server/stats.ts";
 * import { WorkerTotals } from "./totals.ts";
 *
 * const worker = new ServerStats();
 * worker.accepted();
 * worker.accepted();
 * const totals = new WorkerTotals();
 * totals.report(1, worker.snapshot([]));
 * totals.retire(1);
 * totals.report(1, new ServerStats().snapshot([]));
 * assertEquals(totals.total().accepted, 2);
 * ```
 */
export class WorkerTotals {
  readonly #live = new Map<number, StatsSnapshot>();
  #retired: StatsSnapshot | undefined;

  /**
   * Takes a worker's answer. One without a list of connections keeps the
   * list it gave last.
   *
   * @param id The worker.
   * @param stats What it answered.
   */
  report(id: number, stats: WorkerStats): void {
    const active = stats.active ?? this.#live.get(id)?.active ?? [];
    this.#live.set(id, { ...stats, active });
  }

  /**
   * Keeps the counters of a worker that has exited; a new process under the
   * same id starts again from zero.
   *
   * @param id The worker.
   */
  retire(id: number): void {
    const last = this.#live.get(id);
    if (last === undefined) return;
    this.#live.delete(id);
    const left = countersOnly(last);
    this.#retired = this.#retired === undefined
      ? left
      : mergeSnapshots([this.#retired, left]);
  }

  /** How many workers have answered and not exited since. */
  get reporting(): number {
    return this.#live.size;
  }

  /**
   * Adds up what the workers last said and what exited workers left.
   *
   * @returns the totals; all zero before any worker has answered.
   */
  total(): StatsSnapshot {
    const all = [...this.#live.values()];
    if (this.#retired !== undefined) all.unshift(this.#retired);
    return all.length > 0
      ? mergeSnapshots(all)
      : new ServerStats().snapshot([]);
  }
}
