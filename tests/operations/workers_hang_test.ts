/**
 * A worker that stops answering (here stopped with SIGSTOP, as a stuck
 * event loop would be) still gets its share of new clients from the
 * kernel. The supervisor notices through its heartbeat, reports the server
 * not ready at once, and replaces the worker after a grace period.
 *
 * @module
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { get, parseMetrics, sample, within } from "../_admin.ts";
import { asciiUpper, randomBytes, readAll } from "../_helpers.ts";
import { startSupervisor, supervisorAdminPort } from "../_workers.ts";

/** Sends `data`, half-closes, reads to the end: whether the echo came back whole. */
async function tryExchange(port: number, data: Uint8Array): Promise<boolean> {
  try {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const received = readAll(conn.readable);
    await conn.write(data);
    await conn.closeWrite();
    const reply = await received;
    return reply.length === data.length &&
      reply.every((b, i) => b === asciiUpper(data)[i]);
  } catch {
    // Reset when the stopped worker's sockets closed.
    return false;
  }
}

async function accepted(admin: number): Promise<number> {
  const { status, body } = await within(
    get(admin, "/metrics"),
    1000,
    "/metrics",
  );
  assertEquals(status, 200);
  return sample(parseMetrics(body), "upcase_connections_accepted_total");
}

Deno.test("--workers: a worker stopped with SIGSTOP makes /readyz 503 at once, probes stay fast, counters never fall, and it is replaced", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const payload = (i: number) => randomBytes(200, i + 1);
  const first = await Promise.all(
    Array.from({ length: 20 }, (_, i) => tryExchange(server.port, payload(i))),
  );
  assertEquals(first.filter((ok) => ok).length, 20);
  const before = await accepted(admin);
  assertEquals(before, 20);

  const pid = supervised.workerPids().get(1)![0]!;
  Deno.kill(pid, "SIGSTOP");
  // The kernel still hands the stopped worker about half of these.
  const during = Array.from(
    { length: 20 },
    (_, i) => tryExchange(server.port, payload(100 + i)),
  );
  await server.waitForLine(
    new RegExp(`worker 1 \\(pid ${pid}\\) has not answered for 3 heartbeats`),
    15_000,
  );
  // Within the kubelet's default probe timeout, without waiting for the
  // stopped worker.
  const ready = await within(get(admin, "/readyz"), 1000, "/readyz");
  assertEquals([ready.status, ready.body], [503, "not answering: worker 1"]);
  const health = await within(get(admin, "/healthz"), 1000, "/healthz");
  assertEquals([health.status, health.body], [200, "ok"]);
  // The stopped worker's counters stay in the totals.
  assert(await accepted(admin) >= before);

  await server.waitForLine(
    new RegExp(
      `worker 1 \\(pid ${pid}\\) has not answered for 10 heartbeats; killing it`,
    ),
    15_000,
  );
  await server.waitForLine(
    new RegExp(
      `worker 1 \\(pid ${pid}\\) exited with signal SIGKILL; restarting it`,
    ),
  );
  await server.waitForLine(/worker 1 restarted/);
  // None of the clients is left hanging: the stopped worker's were cut
  // when its sockets closed, and the others were served.
  const outcomes = await within(Promise.all(during), 10_000, "every client");
  const served = outcomes.filter((ok) => ok).length;
  assertGreater(served, 0, "worker 2 served none");
  assertGreater(20 - served, 0, "the stopped worker got no client");

  assertEquals((await get(admin, "/readyz")).body, "ready");
  const after = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) => tryExchange(server.port, payload(200 + i)),
    ),
  );
  assertEquals(after.filter((ok) => ok).length, 20);
  assert(await accepted(admin) >= before + served + 20);
});
