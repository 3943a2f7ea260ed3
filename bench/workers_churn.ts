/**
 * What the whole server's connection limits cost with `--workers`: short
 * connections per second (connect, one 64-byte exchange, close) through
 * `main.ts --workers N`, without a limit and with limits that are set but
 * never reached, so that only the coordination with the supervisor shows.
 *
 * ```sh
 * deno task churn                      # 3 rounds of each case, this checkout
 * deno task churn --root /path/to/old  # the same against another checkout
 * ```
 *
 * Each case runs in turn within a round, so that a busy machine weighs on
 * all of them alike; compare figures from one run only. The client is Go
 * (`bench/churn_go/`), unpinned, on the same machine.
 *
 * @module
 */
import { parseArgs } from "@std/cli";

const SOURCE_DIR = decodeURIComponent(
  new URL("./churn_go/", import.meta.url).pathname,
);
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The client's report. */
export interface ChurnResult {
  /** Connections at a time. */
  conns: number;
  /** Exchanges completed, each on a connection of its own, per second. */
  connsPerSec: number;
  /** Median time from connect to the server's close, in microseconds. */
  p50Us: number;
  /** 99th percentile of the same. */
  p99Us: number;
  /** Exchanges completed in the warm-up and the measured seconds. */
  total: number;
  /**
   * CPU time the supervisor and its workers spent per exchange, over the
   * whole run, in microseconds: unlike the rate, it hardly moves when other
   * work shares the machine.
   */
  serverCpuUs: number;
  /** Exchanges that failed or came back wrong. */
  errors: number;
  /** The first failure's message. */
  firstError: string;
}

/** The cases measured: a name and the server's extra arguments. */
export const CASES: [string, string[]][] = [
  ["no limit", []],
  ["--max-connections 10000", ["--max-connections", "10000"]],
  ["--max-connections-per-ip 1000", ["--max-connections-per-ip", "1000"]],
];

/**
 * Builds the Go churn client into `dir`.
 *
 * @param dir A scratch folder.
 * @returns the binary's path.
 */
export async function buildChurn(dir: string): Promise<string> {
  const binary = `${dir}/churn`;
  const output = await new Deno.Command("go", {
    args: ["build", "-o", binary, "."],
    cwd: SOURCE_DIR,
    env: { GOPROXY: "off", GOTOOLCHAIN: "local" },
    stdin: "null",
  }).output();
  if (!output.success) {
    throw new Error(
      `Cannot build the churn client: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return binary;
}

/**
 * Two free ports on 127.0.0.1, taken at once: one closed before the next is
 * asked for could be handed out again.
 *
 * @returns the ports.
 */
export function freePorts(): [number, number] {
  const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const b = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  a.close();
  b.close();
  return [a.addr.port, b.addr.port];
}

/**
 * Eight source addresses from a fresh range for each run: the last run's
 * connections sit in TIME_WAIT for a minute, and a new connection that
 * meets one of them waits for a SYN retransmit.
 *
 * @returns the addresses, comma-separated.
 */
export function freshSources(): string {
  const [x, y] = [1, 2].map(() => 1 + Math.floor(Math.random() * 254));
  return Array.from({ length: 8 }, (_, i) => `127.${x}.${y}.${i + 1}`).join(
    ",",
  );
}

// User and system CPU of a process and its children that are still
// running (the workers), in clock ticks, from /proc.
async function cpuTicks(pid: number): Promise<number> {
  const pids = [pid];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(
      () => "",
    );
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === pid) pids.push(Number(entry.name));
  }
  let ticks = 0;
  for (const p of pids) {
    const stat = await Deno.readTextFile(`/proc/${p}/stat`).catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of stat(5).
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks;
}

/**
 * Waits until the supervisor's admin endpoint answers `/readyz` with 200,
 * which it does only once every worker serves; the server's log can then be
 * quiet (warning level), as a loaded server's would be, since a line per
 * connection would be most of the work.
 *
 * @param admin The admin port.
 * @param child The server, whose exit ends the wait.
 */
export async function waitUntilReady(
  admin: number,
  child: Deno.ChildProcess,
): Promise<void> {
  const deadline = performance.now() + 30_000;
  let exited = false;
  child.status.then(() => exited = true);
  while (performance.now() < deadline && !exited) {
    try {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("The server did not become ready");
}

/**
 * Starts `main.ts` from `root` with `--workers` and `args`, runs the churn
 * client against it, and stops it.
 *
 * @param options The client, the checkout, the server's arguments and the load.
 * @returns the client's report.
 */
export async function runChurn(options: {
  binary: string;
  root?: string;
  workers: number;
  args: string[];
  conns: number;
  seconds: number;
}): Promise<ChurnResult> {
  const { binary, root = ROOT, workers, args, conns, seconds } = options;
  const [port, admin] = freePorts();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-run",
      "--allow-env",
      `${root}/main.ts`,
      ...["--workers", String(workers), "--log-level", "warning"],
      ...["--host", "127.0.0.1", "--port", String(port)],
      ...["--admin", `127.0.0.1:${admin}`, ...args],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await waitUntilReady(admin, child);
    const before = await cpuTicks(child.pid);
    const out = await new Deno.Command(binary, {
      args: [
        ...["-addr", `127.0.0.1:${port}`, "-conns", String(conns)],
        ...["-duration", String(seconds)],
        ...["-sources", freshSources()],
      ],
      stdin: "null",
      stderr: "inherit",
    }).output();
    const ticks = await cpuTicks(child.pid) - before;
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    // Clock ticks are 10 ms on Linux (USER_HZ 100).
    const serverCpuUs = Math.round(ticks * 10_000 / result.total);
    return { ...result, serverCpuUs } as ChurnResult;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

async function main(): Promise<void> {
  const flags = parseArgs(Deno.args, {
    string: ["root", "rounds", "seconds", "conns", "workers"],
  });
  const dir = await Deno.makeTempDir({ prefix: "upcase-churn-" });
  try {
    const binary = await buildChurn(dir);
    const rounds = Number(flags.rounds ?? 3);
    for (let round = 1; round <= rounds; round++) {
      for (const [name, args] of CASES) {
        const result = await runChurn({
          binary,
          ...(flags.root ? { root: flags.root } : {}),
          workers: Number(flags.workers ?? 2),
          args,
          conns: Number(flags.conns ?? 50),
          seconds: Number(flags.seconds ?? 5),
        });
        const line = JSON.stringify({ round, case: name, ...result });
        Deno.stdout.writeSync(new TextEncoder().encode(`${line}\n`));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
