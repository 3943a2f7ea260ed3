import type { StatsSnapshot } from "../server/stats.ts";

type Highest =
  | "uptimeSeconds"
  | "eventLoopLagSeconds"
  | "eventLoopLagMaxSeconds";

type Mergeable = number | boolean | string | Mergeable[] | {
  [key: string]: Mergeable;
};

// Generic, so that a counter added to StatsSnapshot later is summed too
// without a change here: numbers add up, flags are true if any is, counts
// by key add up by key, bucket arrays add up element by element, and lists
// of objects (the open connections) are joined.
function merge(a: Mergeable, b: Mergeable): Mergeable {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (typeof a === "boolean" && typeof b === "boolean") return a || b;
  if (Array.isArray(a) && Array.isArray(b)) {
    const numeric = [...a, ...b].every((x) => typeof x === "number");
    if (!numeric) return [...a, ...b];
    const length = Math.max(a.length, b.length);
    return Array.from(
      { length },
      (_, i) => ((a[i] as number) ?? 0) + ((b[i] as number) ?? 0),
    );
  }
  if (
    typeof a === "object" && typeof b === "object" && !Array.isArray(a) &&
    !Array.isArray(b)
  ) {
    const out: Record<string, Mergeable> = { ...a };
    for (const [key, value] of Object.entries(b)) {
      const mine = out[key];
      out[key] = mine === undefined ? value : merge(mine, value);
    }
    return out;
  }
  return a;
}

/**
 * Adds up the snapshots of several workers into totals for the whole
 * server: counters and byte totals are summed, the open connections joined,
 * and `draining` or `paused` is true if it is for any of them. The uptime is
 * the longest one's (the supervisor replaces it with its own), and the
 * event loop's lag the worst one's: one worker that lags serves its share
 * of clients that late, whatever the others do.
 *
 * @param snapshots One snapshot per worker; at least one.
 * @returns the totals.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ServerStats } from "../server/stats.ts";
 * import { mergeSnapshots } from "./merge.ts";
 *
 * const a = new ServerStats();
 * a.closed({ bytesIn: 3, bytesOut: 3, reason: "eof" }, 0.5);
 * const b = new ServerStats();
 * b.closed({ bytesIn: 4, bytesOut: 4, reason: "eof" }, 2);
 * const total = mergeSnapshots([a.snapshot([]), b.snapshot([])]);
 * assertEquals([total.closed.eof, total.bytesIn, total.durationSum], [2, 7, 2.5]);
 * ```
 */
export function mergeSnapshots(snapshots: StatsSnapshot[]): StatsSnapshot {
  const [first, ...rest] = snapshots;
  if (first === undefined) {
    throw new RangeError("Cannot merge snapshots: got none");
  }
  let total = structuredClone(first) as unknown as Mergeable;
  for (const next of rest) {
    total = merge(total, next as unknown as Mergeable);
  }
  const highest = (key: Highest) => Math.max(...snapshots.map((s) => s[key]));
  return {
    ...(total as unknown as StatsSnapshot),
    uptimeSeconds: highest("uptimeSeconds"),
    eventLoopLagSeconds: highest("eventLoopLagSeconds"),
    eventLoopLagMaxSeconds: highest("eventLoopLagMaxSeconds"),
  };
}
