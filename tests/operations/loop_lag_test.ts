/**
 * The event loop's lag, end to end: a real server process stopped with
 * SIGSTOP is a loop that runs nothing for as long as it is stopped, as a
 * long computation or a starved CPU would make it. Once it runs again, its
 * timer fires that late, and /metrics, with one process or with
 * `--workers`, and the log must say so.
 *
 * @module
 */
import { assert, assertEquals, assertGreaterOrEqual } from "@std/assert";
import { get, parseMetrics, sample, within } from "../_admin.ts";
import { ServerProcess } from "../_helpers.ts";
import { startSupervisor, supervisorAdminPort } from "../_workers.ts";

const LAG = "upcase_event_loop_lag_seconds";
const WARNING =
  /\[WRN\] upcase\.server: event loop lag above 100 ms for ([\d.]+) s, up to (\d+) ms/;
const RECOVERY =
  /\[INF\] upcase\.server: event loop lag back to normal after ([\d.]+) s: .* the worst was (\d+) ms/;

// The lag's timer runs every 100 ms, so the tick that the stop holds up
// was due at most that far into it: it fires at least the stop's length
// less 100 ms late.
const TICK_S = 0.1;

// The length of the stop is what the test measures, so it is timed; every
// wait after it is for what the server says.
async function stopFor(pid: number, ms: number): Promise<void> {
  Deno.kill(pid, "SIGSTOP");
  try {
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
}

/**
 * Scrapes until the lag gauge reaches `atLeast` seconds, at most 40 times
 * and 20 s; returns the last scrape. A stopped process answers once it
 * runs again, and its timer may fire a moment after the first answer.
 */
async function scrapeUntilLag(
  port: number,
  atLeast: number,
): Promise<Map<string, number>> {
  const deadline = performance.now() + 20_000;
  let last = new Map<string, number>();
  for (let i = 0; i < 40 && performance.now() < deadline; i++) {
    const { status, body } = await within(
      get(port, "/metrics"),
      5000,
      "/metrics",
    );
    assertEquals(status, 200, body);
    last = parseMetrics(body);
    if (sample(last, LAG) >= atLeast) return last;
  }
  throw new Error(`${LAG} stayed below ${atLeast}: ${sample(last, LAG)}`);
}

async function adminPort(server: ServerProcess): Promise<number> {
  const line = await server.waitForLine(/admin listening on /);
  return Number(/admin listening on \S+:(\d+)/.exec(line)?.[1]);
}

Deno.test("a server stopped for 1.5 s shows the lag on /metrics; one stopped for 3.5 s logs one warning and one recovery", async () => {
  await using server = await ServerProcess.start(["--admin", "127.0.0.1:0"]);
  const port = await adminPort(server);
  const pid = server.child.pid;
  const before = await scrapeUntilLag(port, 0);
  // A control: what the stop must show is not there before it.
  assert(
    sample(before, LAG) < 1.5,
    `lag before any stop: ${sample(before, LAG)}`,
  );

  await stopFor(pid, 1500);
  const after = await scrapeUntilLag(port, 1.5 - TICK_S);
  assertGreaterOrEqual(
    sample(after, "upcase_event_loop_lag_max_seconds"),
    1.5 - TICK_S,
  );

  // Under 3 s, the stall was no episode; the next one is, by itself. Had
  // the first been logged, the first warning would name its 1.5 s.
  await stopFor(pid, 3500);
  const warning = WARNING.exec(await server.waitForLine(WARNING, 20_000))!;
  assertGreaterOrEqual(Number(warning[1]), 3.5 - TICK_S);
  assertGreaterOrEqual(Number(warning[2]), (3.5 - TICK_S) * 1000);
  const recovery = RECOVERY.exec(await server.waitForLine(RECOVERY, 20_000))!;
  assertGreaterOrEqual(Number(recovery[1]), 3.5 - TICK_S);
  assertEquals(recovery[2], warning[2]);
  assertEquals(server.lines.filter((l) => WARNING.test(l)).length, 1);
  assertEquals(server.lines.filter((l) => RECOVERY.test(l)).length, 1);
});

Deno.test("--workers: the supervisor's /metrics shows the lag of the worker that was stopped", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const port = await supervisorAdminPort(supervised.server);
  const pid = supervised.workerPids().get(2)!.at(-1)!;
  // Shorter than the 3 missed pings after which the supervisor calls a
  // worker silent. Max, not sum, over the workers: see totals_test.ts.
  await stopFor(pid, 1500);
  const after = await scrapeUntilLag(port, 1.5 - TICK_S);
  assertGreaterOrEqual(
    sample(after, "upcase_event_loop_lag_max_seconds"),
    1.5 - TICK_S,
  );
});
