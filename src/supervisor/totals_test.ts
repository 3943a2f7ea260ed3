import { assertEquals } from "@std/assert";
import { ServerStats } from "../server/stats.ts";
import { WorkerTotals } from "./totals.ts";

const live = (id: number, bytesIn: number) => ({
  id,
  peer: `127.0.0.1:${40000 + id}`,
  startedAt: 0,
  lastActiveAt: 0,
  bytesIn,
  bytesOut: bytesIn,
});

Deno.test("WorkerTotals keeps an exited worker's counters and drops its gauges", () => {
  const one = new ServerStats();
  one.accepted();
  one.accepted();
  one.closed({ bytesIn: 10, bytesOut: 10, reason: "eof" }, 0.5);
  one.waiting = 1;
  const two = new ServerStats();
  two.accepted();
  const totals = new WorkerTotals();
  totals.report(1, one.snapshot([live(1, 5)]));
  totals.report(2, two.snapshot([live(2, 7)]));
  let total = totals.total();
  assertEquals(
    [
      total.accepted,
      total.open,
      total.waiting,
      total.bytesIn,
      total.closed.eof,
    ],
    [3, 2, 1, 22, 1],
  );

  totals.retire(1);
  // Its replacement starts from zero, and counts on top.
  const again = new ServerStats();
  again.accepted();
  totals.report(1, again.snapshot([]));
  total = totals.total();
  assertEquals(
    [
      total.accepted,
      total.open,
      total.waiting,
      total.bytesIn,
      total.closed.eof,
    ],
    [4, 1, 0, 22, 1],
  );
  assertEquals(total.durationCounts.at(-1), 1);
  assertEquals(totals.reporting, 2);
});

Deno.test("WorkerTotals keeps a worker's last list of connections when an answer has none", () => {
  const stats = new ServerStats();
  const totals = new WorkerTotals();
  totals.report(1, stats.snapshot([live(1, 5), live(2, 6)]));
  const { active: _, ...counters } = stats.snapshot([live(1, 5), live(2, 6)]);
  totals.report(1, counters);
  const total = totals.total();
  assertEquals(total.active.map((c) => c.peer), [
    "127.0.0.1:40001",
    "127.0.0.1:40002",
  ]);
  assertEquals(total.open, 2);
});

Deno.test("WorkerTotals are all zero before any worker answers", () => {
  const total = new WorkerTotals().total();
  assertEquals([total.accepted, total.open, total.active], [0, 0, []]);
});

Deno.test("WorkerTotals show the worst worker's event loop lag, not the sum, and an exited worker's leaves with it", () => {
  const lagging = (recentSeconds: number, maxSeconds: number) => {
    const stats = new ServerStats();
    stats.lag = { recentSeconds, maxSeconds };
    return stats.snapshot([]);
  };
  const totals = new WorkerTotals();
  totals.report(1, lagging(0.002, 0.05));
  totals.report(2, lagging(1.5, 1.5));
  totals.report(3, lagging(0.001, 2));
  let total = totals.total();
  assertEquals([total.eventLoopLagSeconds, total.eventLoopLagMaxSeconds], [
    1.5,
    2,
  ]);
  totals.retire(2);
  totals.retire(3);
  total = totals.total();
  assertEquals([total.eventLoopLagSeconds, total.eventLoopLagMaxSeconds], [
    0.002,
    0.05,
  ]);
});
