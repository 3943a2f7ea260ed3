import { assert, assertEquals } from "@std/assert";
import { runLoad } from "../bench/loadgen.ts";
import { openFds, recordFigure, rssKiB, scale } from "./_figures.ts";
import { ServerProcess } from "./_helpers.ts";

const CONNECTIONS = scale(30_000, 100_000);
const WARMUP = 5_000;
// RSS may settle a little higher after the heap has grown to its working
// size; a leak of even 1 KiB per connection would add 30 MiB here.
const RSS_MARGIN = 0.1;

/** Polls `read` until it returns `want`, for `ms` at most; returns the last value. */
async function settle(
  read: () => number,
  want: number,
  ms: number,
): Promise<number> {
  const deadline = Date.now() + ms;
  let value = read();
  while (value !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = read();
  }
  return value;
}

Deno.test("server takes a churn of short connections with no failure and no leak", async () => {
  await using server = await ServerProcess.start([]);
  const pid = server.child.pid;
  const load = {
    port: server.port,
    concurrency: 100,
    bytesPerConnection: 256,
    chunkSize: 256,
  };

  const warm = await runLoad({ ...load, connections: WARMUP, seed: 1 });
  assertEquals(warm.failed, 0, warm.errors.join("\n"));
  // Closing is asynchronous on the server side; this waits at most 10 s for
  // the count to come back, and the assertion below reports where it ended.
  const fdsBefore = await settle(() => openFds(pid), openFds(pid), 0);
  const rssBefore = rssKiB(pid);

  const run = await runLoad({ ...load, connections: CONNECTIONS, seed: 2 });
  assertEquals(run.failed, 0, run.errors.join("\n"));
  assertEquals(run.ok, CONNECTIONS);
  assertEquals(run.bytesVerified, CONNECTIONS * load.bytesPerConnection);

  const fdsAfter = await settle(() => openFds(pid), fdsBefore, 10_000);
  assertEquals(fdsAfter, fdsBefore, "open fds back to the baseline");
  const rssAfter = rssKiB(pid);
  const growth = (rssAfter - rssBefore) / rssBefore;
  assert(
    growth < RSS_MARGIN,
    `RSS grew ${(growth * 100).toFixed(1)}% (${rssBefore} -> ${rssAfter} KiB)`,
  );

  const perSecond = Math.round(CONNECTIONS / (run.elapsedMs / 1000));
  await recordFigure({
    test: "churn: short connections",
    load:
      `${CONNECTIONS} connections, 100 at a time, one 256-byte exchange each`,
    faults: "none; connect, exchange, close as fast as possible",
    result:
      `0 failed (${perSecond} connections/s); fds ${fdsBefore} before and ${fdsAfter} after; ` +
      `RSS ${(rssBefore / 1024).toFixed(1)} -> ${
        (rssAfter / 1024).toFixed(1)
      } MiB`,
    bytesLost: run.bytesLost,
  });
});
