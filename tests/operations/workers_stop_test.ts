import {
  assert,
  assertEquals,
  assertGreater,
  assertLessOrEqual,
  assertMatch,
  assertRejects,
} from "@std/assert";
import { MAX_START_FAILURES } from "../../src/supervisor/supervisor.ts";
import { asciiUpper, exchange, randomBytes, runCli } from "../_helpers.ts";
import { get } from "../_admin.ts";
import {
  startSupervisor,
  StreamingClient,
  type Supervised,
  supervisorAdminPort,
} from "../_workers.ts";

type Way = (supervised: Supervised) => Promise<void> | void;

const count = (lines: string[], pattern: RegExp) =>
  lines.filter((l) => pattern.test(l)).length;

// The worker that serves the client: the one that logged its opening.
function holder(lines: string[]): number {
  const line = lines.find((l) => /^\[w\d+\] .*connection 1 opened/.test(l));
  return Number(/^\[w(\d+)\]/.exec(line ?? "")?.[1]);
}

// Streams through a stop sent `way`, and checks that each worker drained
// once, the stream finished byte for byte, and the supervisor exited 0.
async function stopWhileStreaming(
  way: Way,
  signal: "SIGTERM" | "SIGINT",
): Promise<{ lines: string[]; holder: number }> {
  await using supervised = await startSupervisor(2, {
    args: ["--drain-timeout", "30"],
    group: true,
  });
  const { server } = supervised;
  const client = await StreamingClient.connect(server.port);
  await client.after(10);
  await way(supervised);
  await server.waitForLine(/^\[w1\] .*shutting down: no longer accepting/);
  await server.waitForLine(/^\[w2\] .*shutting down: no longer accepting/);
  // The stream goes on through the drain, well past the stop.
  await client.after(20);
  const rounds = client.rounds;
  assertEquals(await client.finish(), rounds * 900);
  const status = await server.exit();
  const { lines } = server;
  const all = lines.join("\n");
  assertEquals(status.code, 0, all);
  assert(!/again/.test(all), all);
  for (const id of [1, 2]) {
    const shutting = new RegExp(`^\\[w${id}\\] .*shutting down:`);
    assertEquals(count(lines, shutting), 1, all);
    assertMatch(all, new RegExp(`worker ${id} \\(pid \\d+\\) exited\\n`));
  }
  assertMatch(all, /shutdown complete: 1 drained, 0 cut/);
  assertMatch(all, /shutdown complete: 0 drained, 0 cut/);
  assertMatch(all, new RegExp(`received ${signal}; asking 2 workers to drain`));
  const id = holder(lines);
  // It also heard from the supervisor, which did not count as a second stop.
  assertMatch(
    all,
    new RegExp(`\\[w${id}\\] .*the supervisor asks to stop \\(${signal}\\)`),
  );
  return { lines, holder: id };
}

function workerPids(supervised: Supervised): number[] {
  return [...supervised.workerPids().values()].flat();
}

Deno.test("--workers drains each worker once when SIGTERM reaches the supervisor only", async () => {
  const { lines } = await stopWhileStreaming(
    ({ server }) => server.child.kill("SIGTERM"),
    "SIGTERM",
  );
  // The workers only heard it from the supervisor.
  assertEquals(count(lines, /^\[w\d\] .*received SIGTERM/), 0);
});

Deno.test("--workers drains each worker once when SIGTERM reaches the whole process group (kill -TERM -PGID, systemd)", async () => {
  const { lines, holder } = await stopWhileStreaming(
    ({ pgid }) => Deno.kill(-pgid, "SIGTERM"),
    "SIGTERM",
  );
  // The worker got the signal itself too, and that was its one stop.
  const own = new RegExp(`^\\[w${holder}\\] .*received SIGTERM; draining`);
  assertEquals(count(lines, own), 1, lines.join("\n"));
});

Deno.test("--workers drains each worker once when SIGTERM reaches every process (systemd's control-group stop, pkill upcase)", async () => {
  const { lines, holder } = await stopWhileStreaming(async (supervised) => {
    // One kill(1) with every pid: each process gets its own signal, in
    // whatever process group or session it is.
    const pids = [supervised.server.child.pid, ...workerPids(supervised)];
    const out = await new Deno.Command("kill", {
      args: ["-TERM", ...pids.map(String)],
    }).output();
    assertEquals(out.code, 0);
  }, "SIGTERM");
  const own = new RegExp(`^\\[w${holder}\\] .*received SIGTERM; draining`);
  assertEquals(count(lines, own), 1, lines.join("\n"));
});

Deno.test("--workers drains each worker once on a Ctrl-C (SIGINT to the process group)", async () => {
  const { lines, holder } = await stopWhileStreaming(
    ({ pgid }) => Deno.kill(-pgid, "SIGINT"),
    "SIGINT",
  );
  const own = new RegExp(`^\\[w${holder}\\] .*received SIGINT; draining`);
  assertEquals(count(lines, own), 1, lines.join("\n"));
});

// A second signal from the operator still ends the drain at once.
async function secondSignalCuts(way: Way): Promise<void> {
  await using supervised = await startSupervisor(2, {
    args: ["--drain-timeout", "30"],
    group: true,
  });
  const { server } = supervised;
  const client = await StreamingClient.connect(server.port);
  await client.after(5);
  await way(supervised);
  await server.waitForLine(/^\[w1\] .*shutting down: no longer accepting/);
  await server.waitForLine(/^\[w2\] .*shutting down: no longer accepting/);
  await client.after(5);
  await way(supervised);
  await assertRejects(() => client.done);
  const status = await server.exit();
  assertEquals(status.code, 143, server.lines.join("\n"));
  assertMatch(
    server.lines.join("\n"),
    /received SIGTERM again; killing the workers and exiting/,
  );
  // Every worker is gone: none lingers, draining, after the supervisor.
  for (const pid of workerPids(supervised)) {
    await waitUntilGone(pid);
  }
}

// Gone, or a zombie that only waits to be reaped: either way it has closed
// its sockets and serves nobody.
function isGone(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return /^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

async function waitUntilGone(pid: number): Promise<void> {
  // Bounded: a worker that survives fails the test.
  const deadline = performance.now() + 10_000;
  while (!isGone(pid)) {
    if (performance.now() > deadline) {
      throw new Error(`Worker ${pid} is still running`);
    }
    // Polls /proc: a SIGKILL takes effect without a line to wait for.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("--workers: a second SIGTERM to the supervisor ends the drain and cuts the stream", async () => {
  await secondSignalCuts(({ server }) => server.child.kill("SIGTERM"));
});

Deno.test("--workers: a second SIGTERM to the process group ends the drain and cuts the stream", async () => {
  await secondSignalCuts(({ pgid }) => Deno.kill(-pgid, "SIGTERM"));
});

Deno.test("--workers restarts a worker that crashes before it is ready, and serves with all of them", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--drain-timeout", "5"],
    ready: /started worker 1 \(pid \d+\)/,
  });
  const { server } = supervised;
  const pid = supervised.workerPids().get(1)![0]!;
  Deno.kill(pid, "SIGKILL");
  const line = await server.waitForLine(
    new RegExp(`worker 1 \\(pid ${pid}\\) exited with signal SIGKILL`),
  );
  assertMatch(line, /before it was ready; restarting it in 100 ms/);
  await server.waitForLine(/worker 1 restarted/);
  const up = await server.waitForLine(/listening on \S+ with 2 workers/);
  const port = Number(/:(\d+) with/.exec(up)?.[1]);
  assertEquals(supervised.workerPids().get(1)?.length, 2);

  const payloads = Array.from(
    { length: 40 },
    (_, i) => randomBytes(50 + i, i + 1),
  );
  const replies = await Promise.all(payloads.map((p) => exchange(port, p)));
  replies.forEach((reply, i) => assertEquals(reply, asciiUpper(payloads[i]!)));
  for (const id of [1, 2]) {
    const opened = new RegExp(`^\\[w${id}\\] .*connection \\d+ opened`);
    assertGreater(count(server.lines, opened), 0, `worker ${id} served none`);
  }
  server.child.kill("SIGTERM");
  const status = await server.exit();
  assertEquals(status.code, 0, server.lines.join("\n"));
});

Deno.test("--workers gives up, with exit code 1, on a worker that keeps failing before it is ready", async () => {
  const dir = await Deno.makeTempDir({ prefix: "upcase-workers-" });
  try {
    // The supervisor does not read the TLS files; each worker does, and
    // fails on these every time.
    await Deno.writeTextFile(`${dir}/cert.pem`, "not a certificate\n");
    await Deno.writeTextFile(`${dir}/key.pem`, "not a key\n");
    const started = performance.now();
    const result = await runCli([
      "--workers",
      "2",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--tls-cert",
      `${dir}/cert.pem`,
      "--tls-key",
      `${dir}/key.pem`,
    ], {
      permissions: ["--allow-net", "--allow-run", "--allow-read"],
      timeoutMs: 60_000,
    });
    const seconds = (performance.now() - started) / 1000;
    assertEquals(result.code, 1, result.stderr);
    assertMatch(
      result.stderr,
      new RegExp(
        `exited with exit code 1 before it was ready, ${MAX_START_FAILURES} times in a row; giving up`,
      ),
    );
    assertMatch(result.stderr, /\[w\d\] upcase: .*--tls-cert/);
    const starts = count(result.stderr.split("\n"), /started worker \d/);
    assertGreater(starts, MAX_START_FAILURES);
    assertLessOrEqual(starts, 2 * MAX_START_FAILURES);
    assertLessOrEqual(seconds, 30, `took ${seconds} s`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers reports a port in use in one line, before it starts any worker", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const result = await runCli(
    [
      "--workers",
      "2",
      "--host",
      "127.0.0.1",
      "--port",
      String(taken.addr.port),
    ],
    { permissions: ["--allow-net", "--allow-run"] },
  );
  assertEquals(result.code, 1, result.stderr);
  assertEquals(
    result.stderr,
    `upcase: Cannot listen on 127.0.0.1:${taken.addr.port}: the address is already in use\n`,
  );
});

Deno.test("--workers: a worker that finished its drain before the supervisor heard of the stop counts as stopped, not crashed", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  // As when a stop sent to every process reaches a supervisor slow to run
  // its handler: the workers, with nothing to drain, exit first.
  for (const pid of workerPids(supervised)) Deno.kill(pid, "SIGTERM");
  for (const pid of workerPids(supervised)) await waitUntilGone(pid);
  // Bounded: the supervisor has seen both exits once no worker serves.
  const deadline = performance.now() + 5000;
  while ((await get(admin, "/readyz")).body !== "no worker serving") {
    assert(performance.now() < deadline, server.lines.join("\n"));
  }
  server.child.kill("SIGTERM");
  const status = await server.exit();
  const all = server.lines.join("\n");
  assertEquals(status.code, 0, all);
  assert(!/restart|\[ERR\]/.test(all), all);
  for (const id of [1, 2]) {
    assertMatch(all, new RegExp(`worker ${id} \\(pid \\d+\\) exited\\n`));
  }
});

Deno.test("--workers restarts a worker that a stop signal reached alone, once the restart delay has passed", async () => {
  await using supervised = await startSupervisor(2);
  const { server } = supervised;
  const pid = supervised.workerPids().get(1)![0]!;
  Deno.kill(pid, "SIGTERM");
  await server.waitForLine(
    new RegExp(
      `worker 1 \\(pid ${pid}\\) exited with exit code 0; restarting it after 1000 ms`,
    ),
  );
  await server.waitForLine(/worker 1 restarted/);
  assertEquals(supervised.workerPids().get(1)?.length, 2);
});
