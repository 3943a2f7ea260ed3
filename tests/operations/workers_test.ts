import { assert, assertEquals, assertGreater, assertMatch } from "@std/assert";
import { runCapacity, startWorkers } from "../../bench/capacity.ts";
import { buildLoadgen } from "../../bench/loadgen_go.ts";
import { finish, get, parseMetrics, roundTrip, sample } from "../_admin.ts";
import {
  asciiUpper,
  exchange,
  needs,
  randomBytes,
  runCli,
  type ServerProcess,
} from "../_helpers.ts";

async function adminPort(server: ServerProcess): Promise<number> {
  const line = await server.waitForLine(/admin listening on .* \(totals/);
  return Number(/:(\d+) \(totals/.exec(line)?.[1]);
}

async function workerPid(server: ServerProcess, id: number): Promise<number> {
  const line = await server.waitForLine(
    new RegExp(`started worker ${id} \\(pid \\d+\\)`),
  );
  return Number(/\(pid (\d+)\)/.exec(line)?.[1]);
}

Deno.test("--workers 2 spreads connections over both workers and sums their metrics exactly", async () => {
  await using server = await startWorkers(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const admin = await adminPort(server);
  // A different length for each, so that each close has a log line of its own.
  const payloads = Array.from(
    { length: 40 },
    (_, i) => randomBytes(100 + i * 37, i + 1),
  );
  const replies = await Promise.all(
    payloads.map((p) => exchange(server.port, p)),
  );
  replies.forEach((reply, i) => assertEquals(reply, asciiUpper(payloads[i]!)));
  for (const p of payloads) {
    await server.waitForLine(
      new RegExp(
        `closed \\(eof\\): ${p.length} bytes in, ${p.length} bytes out`,
      ),
    );
  }

  const opened = (id: number) =>
    server.lines.filter((l) =>
      new RegExp(`^\\[w${id}\\] .*connection \\d+ opened`).test(l)
    ).length;
  assertEquals(opened(1) + opened(2), 40);
  assertGreater(opened(1), 0, "worker 1 got no connection");
  assertGreater(opened(2), 0, "worker 2 got no connection");

  const { status, body } = await get(admin, "/metrics");
  assertEquals(status, 200);
  const metrics = parseMetrics(body);
  const bytes = payloads.reduce((n, p) => n + p.length, 0);
  assertEquals(sample(metrics, "upcase_connections_accepted_total"), 40);
  assertEquals(
    sample(metrics, 'upcase_connections_total{reason="eof"}'),
    40,
  );
  assertEquals(sample(metrics, "upcase_bytes_received_total"), bytes);
  assertEquals(sample(metrics, "upcase_bytes_sent_total"), bytes);
  assertEquals(sample(metrics, "upcase_connections_active"), 0);
  assertEquals((await get(admin, "/readyz")).body, "ready");
});

Deno.test("--workers restarts a worker that crashes, and serving goes on", async () => {
  await using server = await startWorkers(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const admin = await adminPort(server);
  const pid = await workerPid(server, 1);
  Deno.kill(pid, "SIGKILL");
  await server.waitForLine(
    new RegExp(
      `worker 1 \\(pid ${pid}\\) exited with signal SIGKILL; restarting it in 100 ms`,
    ),
  );
  await server.waitForLine(/worker 1 restarted/);
  const restarted = server.lines.filter((l) =>
    /started worker 1 \(pid \d+\)/.test(l)
  );
  assertEquals(restarted.length, 2);
  assert(!restarted[1]!.includes(`(pid ${pid})`), restarted[1]);

  const payloads = Array.from({ length: 20 }, (_, i) => randomBytes(64, i + 7));
  const replies = await Promise.all(
    payloads.map((p) => exchange(server.port, p)),
  );
  replies.forEach((reply, i) => assertEquals(reply, asciiUpper(payloads[i]!)));
  const { status, body } = await get(admin, "/metrics");
  assertEquals(status, 200);
  assertGreater(
    sample(parseMetrics(body), "upcase_connections_accepted_total"),
    0,
  );
  assertEquals((await get(admin, "/readyz")).status, 200);
});

Deno.test("--workers asks every worker to drain on SIGTERM, and exits 0 once they have", async () => {
  const server = await startWorkers(2, { args: ["--drain-timeout", "30"] });
  try {
    using conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    assertEquals(
      await roundTrip(conn, "before the signal"),
      "BEFORE THE SIGNAL",
    );
    server.child.kill("SIGTERM");
    await server.waitForLine(/received SIGTERM; asking 2 workers to drain/);
    await server.waitForLine(/^\[w1\] .*shutting down: no longer accepting/);
    await server.waitForLine(/^\[w2\] .*shutting down: no longer accepting/);
    // The held connection is still served while its worker drains.
    assertEquals(await roundTrip(conn, "during the drain"), "DURING THE DRAIN");
    assertEquals(await finish(conn), 0);
    const status = await server.exit();
    assertEquals(status.code, 0, server.lines.join("\n"));
    const all = server.lines.join("\n");
    assertMatch(all, /shutdown complete: 1 drained, 0 cut/);
    assertMatch(all, /worker 1 \(pid \d+\) exited\n/);
    assertMatch(all, /worker 2 \(pid \d+\) exited\n/);
    assertMatch(all, /all workers have exited/);
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("--workers refuses --unix, and needs --allow-run", async () => {
  const unix = await runCli(
    ["--workers", "2", "--unix", "/tmp/upcase-w.sock"],
    {
      permissions: [
        "--allow-net",
        "--allow-run",
        "--allow-read",
        "--allow-write",
      ],
    },
  );
  assertEquals(unix.code, 2);
  assertMatch(unix.stderr, /^upcase: Cannot use --workers with --unix/);
  const noRun = await runCli(["--workers", "2", "--port", "0"]);
  assertEquals(noRun.code, 1);
  assertMatch(noRun.stderr, /^upcase: --workers needs --allow-run/);
  assertEquals(noRun.stderr.trim().split("\n").length, 1);
});

Deno.test({
  ...needs(
    ["go", "taskset"],
    "--workers 3 holds 30,000 connections, each checked again once all are open",
  ),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "upcase-capacity-" });
    try {
      const result = await runCapacity({
        loadgen: await buildLoadgen(dir),
        conns: 30_000,
        workers: 3,
      });
      assertEquals(result.errors, 0, result.firstErrors.join("\n"));
      assertEquals(result.connected, 30_000);
      assertEquals(result.verified, 30_000);
      // 30,000 is more than one process's 20,000 descriptors could hold.
      assertEquals(result.perWorker.reduce((a, b) => a + b, 0), 30_000);
      for (const n of result.perWorker) assertGreater(n, 0);
      assertGreater(result.bytesPerConnection, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
