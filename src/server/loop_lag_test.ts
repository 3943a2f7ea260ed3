import { assert, assertEquals, assertGreaterOrEqual } from "@std/assert";
import {
  configureSync,
  getLogger,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import { LAG_THRESHOLD_MS, LoopLag } from "./loop_lag.ts";

// A LoopLag on a clock the test moves, whose timer fires when the test
// says: `tick(ms)` lets the loop be `ms` late on the next tick.
function fakeLoop() {
  const records: LogRecord[] = [];
  configureSync({
    reset: true,
    sinks: { mem: (r) => void records.push(r) },
    loggers: [
      { category: ["lag"], sinks: ["mem"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  let now = 1_000_000;
  let timer: (() => void) | undefined;
  const lag = new LoopLag({
    logger: getLogger(["lag"]),
    now: () => now,
    every(tick, ms) {
      assertEquals(ms, 100);
      timer = tick;
      return () => timer = undefined;
    },
  });
  lag.start();
  return {
    lag,
    records,
    lines: () => records.map((r) => `${r.level} ${r.message.join("")}`),
    /** The next tick fires `late` ms after it was due. */
    tick(late = 0) {
      now += 100 + late;
      timer!();
    },
    /** Ticks on time for `ms`. */
    idle(ms: number) {
      for (let t = 0; t < ms; t += 100) this.tick();
    },
    [Symbol.dispose]() {
      lag[Symbol.dispose]();
      resetSync();
    },
  };
}

Deno.test("LoopLag shows a blocked loop's lag, and its episode logs one warning and one recovery line", () => {
  using loop = fakeLoop();
  loop.idle(2000);
  assertEquals([loop.lag.recentSeconds, loop.lag.maxSeconds], [0, 0]);

  // A loop kept busy: every tick 200 ms late, for 9 s.
  for (let i = 0; i < 30; i++) loop.tick(200);
  assertEquals([loop.lag.recentSeconds, loop.lag.maxSeconds], [0.2, 0.2]);
  // Then one stall of 1.2 s within it.
  loop.tick(1200);
  assertEquals([loop.lag.recentSeconds, loop.lag.maxSeconds], [1.2, 1.2]);
  assertEquals(loop.lines().length, 1);
  // Dips below the threshold, each shorter than the 5 s of calm that end
  // an episode, do not end it.
  for (let dip = 0; dip < 3; dip++) {
    loop.idle(4000);
    loop.tick(300);
  }
  loop.idle(4900);
  assertEquals(loop.lines().length, 1, "5 s of calm have not passed yet");
  loop.idle(200);

  assertEquals(loop.records.length, 2, loop.lines().join("\n"));
  const [warning, recovery] = loop.records;
  assertEquals(warning!.level, "warning");
  // The first late tick was due at 2.1 s; the 11th, 300 ms apart, fired at
  // 5.3 s.
  assertEquals(warning!.properties, {
    thresholdMs: LAG_THRESHOLD_MS,
    seconds: 3.2,
    lagMs: 200,
  });
  assertEquals(recovery!.level, "info");
  assert(
    loop.lines()[1]!.startsWith("info event loop lag back to normal after "),
    loop.lines()[1],
  );
  // From 2.1 s to the first tick on time after the last late one, at 25.6 s.
  assertEquals(recovery!.properties, {
    seconds: 23.5,
    thresholdMs: LAG_THRESHOLD_MS,
    quietSeconds: 5,
    lagMs: 1200,
  });
});

Deno.test("LoopLag shows a short stall for 10 s and logs nothing for it", () => {
  using loop = fakeLoop();
  loop.tick(2900);
  loop.idle(10_000);
  assertEquals([loop.lag.recentSeconds, loop.lag.maxSeconds], [2.9, 2.9]);
  loop.idle(1000);
  assertEquals([loop.lag.recentSeconds, loop.lag.maxSeconds], [0, 2.9]);
  // A lag at the threshold is not above it.
  for (let i = 0; i < 100; i++) loop.tick(LAG_THRESHOLD_MS);
  loop.idle(10_000);
  assertEquals(loop.lines(), []);
});

Deno.test("LoopLag measures a real timer held up by a busy loop", async () => {
  const ticked = Promise.withResolvers<void>();
  using lag = new LoopLag({
    logger: getLogger(["lag"]),
    every(tick, ms) {
      const timer = setInterval(() => {
        tick();
        ticked.resolve();
      }, ms);
      return () => clearInterval(timer);
    },
  });
  lag.start();
  // Hold the loop past the timer's due time, as a long computation would.
  const until = performance.now() + 400;
  while (performance.now() < until) { /* busy */ }
  await ticked.promise;
  assertGreaterOrEqual(lag.recentSeconds, 0.3);
  assertEquals(lag.maxSeconds, lag.recentSeconds);
});
