/**
 * The supervisor's admin endpoint: totals from the workers' answers to its
 * pings, counters that never fall, and a capped connection list.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertLessOrEqual,
} from "@std/assert";
import { get, parseMetrics, roundTrip, sample } from "../_admin.ts";
import { asciiUpper, exchange, randomBytes } from "../_helpers.ts";
import { startSupervisor, supervisorAdminPort } from "../_workers.ts";

const COUNTERS = [
  "upcase_connections_accepted_total",
  'upcase_connections_total{reason="eof"}',
  "upcase_bytes_received_total",
  "upcase_bytes_sent_total",
  "upcase_connection_duration_seconds_count",
];

async function counters(admin: number): Promise<number[]> {
  const { status, body } = await get(admin, "/metrics");
  assertEquals(status, 200);
  const metrics = parseMetrics(body);
  return COUNTERS.map((name) => sample(metrics, name));
}

Deno.test("--workers: a worker that crashes leaves its counters in the totals, so that none falls", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const payloads = Array.from(
    { length: 40 },
    (_, i) => randomBytes(100 + i * 37, i + 1),
  );
  const replies = await Promise.all(
    payloads.map((p) => exchange(server.port, p)),
  );
  replies.forEach((reply, i) => assertEquals(reply, asciiUpper(payloads[i]!)));
  for (const p of payloads) {
    await server.waitForLine(new RegExp(`closed \\(eof\\): ${p.length} bytes`));
  }
  const bytes = payloads.reduce((n, p) => n + p.length, 0);
  const expected = [40, 40, bytes, bytes, 40];
  assertEquals(await counters(admin), expected);
  const served =
    server.lines.filter((l) => /^\[w1\] .*connection \d+ opened/.test(l))
      .length;
  assertGreater(served, 0, "worker 1 served none");

  const pid = supervised.workerPids().get(1)![0]!;
  Deno.kill(pid, "SIGKILL");
  await server.waitForLine(/worker 1 restarted/);
  assertEquals(await counters(admin), expected);
  // The workers serve no admin endpoint of their own.
  assert(
    !server.lines.some((l) => /^\[w\d\] .*admin listening/.test(l)),
    server.lines.join("\n"),
  );
});

Deno.test("--workers: /status.json counts every open connection and lists at most 500", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--admin", "127.0.0.1:0", "--log-level", "info"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      const batch = await Promise.all(
        Array.from(
          { length: 10 },
          () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
        ),
      );
      conns.push(...batch);
      // Each is known to be open once it has echoed.
      await Promise.all(batch.map((c) => roundTrip(c, "x")));
    }
    const { status, body } = await get(admin, "/status.json");
    assertEquals(status, 200);
    const json = JSON.parse(body);
    assertEquals(json.activeTotal, 600);
    assertEquals(json.stats.open, 600);
    assertLessOrEqual(json.stats.active.length, 500);
    assertGreater(json.stats.active.length, 0);
    const ours = new Set(conns.map((c) => `127.0.0.1:${c.localAddr.port}`));
    for (const c of json.stats.active) assert(ours.has(c.peer), c.peer);
    const metrics = parseMetrics((await get(admin, "/metrics")).body);
    assertEquals(sample(metrics, "upcase_connections_active"), 600);
  } finally {
    for (const c of conns) c.close();
  }
});
