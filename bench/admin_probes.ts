/**
 * What the supervisor's admin endpoint costs with many connections open:
 * the latency of `/healthz`, `/readyz`, `/metrics` and `/status.json`, and
 * the echo latency of clients while probes run, with 20,000 idle
 * connections spread over the workers.
 *
 * ```sh
 * deno task probes                              # this checkout
 * deno task probes --old /path/to/old/checkout  # both, round by round
 * ```
 *
 * Each round measures every checkout in turn, so that a busy machine weighs
 * on all of them alike; compare figures from one run only. The idle
 * connections come from several Go load generator processes (each process
 * has the same 20,000 file descriptor limit as a worker), and the echo
 * latency from the Go load generator's ping-pong mode, unpinned.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { freePorts, freshSources, waitUntilReady } from "./workers_churn.ts";
import {
  buildLoadgen,
  type IdleHandle,
  openIdle,
  runGoLoad,
} from "./loadgen_go.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const PATHS = ["/healthz", "/readyz", "/metrics", "/status.json"] as const;
const PER_LOADGEN = 10_000;

/** Latencies of one kind of request, in milliseconds. */
export interface Latency {
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** Longest. */
  max: number;
}

/** What one checkout measured. */
export interface ProbeResult {
  /** The checkout. */
  root: string;
  /** Idle connections held open. */
  conns: number;
  /** Each admin path's latency, one request at a time. */
  probes: Record<typeof PATHS[number], Latency>;
  /** Ping-pong round trips with no probe running, in µs. */
  echoQuiet: { p50Us: number; p99Us: number; maxUs: number };
  /** The same while `/metrics` is asked back to back. */
  echoProbed: { p50Us: number; p99Us: number; maxUs: number };
  /** `/metrics` requests answered during the probed echo run. */
  probedRequests: number;
  /** CPU the supervisor and workers used in 10 quiet seconds, in ms. */
  idleCpuMs: number;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.floor(sorted.length * p));
  return Math.round((sorted[i] ?? NaN) * 10) / 10;
}

async function timeGet(port: number, path: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  await res.arrayBuffer();
  return performance.now() - started;
}

async function latency(port: number, path: string, n: number) {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await timeGet(port, path));
  times.sort((a, b) => a - b);
  return {
    p50: percentile(times, 0.5),
    p90: percentile(times, 0.9),
    max: percentile(times, 1),
  };
}

// User and system CPU of a process and its children, in clock ticks, read
// through ps and cat: Deno opens /proc only with --allow-all.
async function cpuTicks(pid: number): Promise<number> {
  const run = async (cmd: string, args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command(cmd, { args, stdin: "null" }).output()).stdout,
    );
  const children = (await run("ps", ["-o", "pid=", "--ppid", String(pid)]))
    .trim().split(/\s+/).filter((p) => p !== "");
  const stats = await run(
    "cat",
    [String(pid), ...children].map((p) => `/proc/${p}/stat`),
  );
  let ticks = 0;
  for (const stat of stats.trim().split("\n")) {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of stat(5).
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks;
}

async function echo(loadgen: string, addr: string) {
  const r = await runGoLoad(loadgen, {
    addr,
    mode: "pingpong",
    conns: 8,
    duration: 5,
    sources: freshSources().split(","),
  });
  if (r.errors > 0) throw new Error(`Echo errors: ${r.firstError}`);
  return { p50Us: r.p50Us, p99Us: r.p99Us, maxUs: r.maxUs };
}

/**
 * Starts `main.ts` from `root` with two workers and an admin endpoint,
 * holds `conns` idle connections, and measures.
 *
 * @param options The load generator, the checkout and the connections.
 * @returns the figures.
 */
export async function runProbes(
  options: { loadgen: string; root: string; conns: number; samples: number },
): Promise<ProbeResult> {
  const { loadgen, root, conns, samples } = options;
  const [port, admin] = freePorts();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-net", "--allow-run", "--allow-env"],
      `${root}/main.ts`,
      ...["--workers", "2", "--log-level", "warning", "--idle-timeout", "0"],
      ...["--host", "127.0.0.1", "--port", String(port)],
      ...["--admin", `127.0.0.1:${admin}`],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const handles: IdleHandle[] = [];
  try {
    await waitUntilReady(admin, child);
    const addr = `127.0.0.1:${port}`;
    for (let left = conns; left > 0; left -= PER_LOADGEN) {
      handles.push(
        await openIdle(loadgen, {
          addr,
          conns: Math.min(left, PER_LOADGEN),
          sources: freshSources().split(","),
        }),
      );
    }
    const probes = {} as ProbeResult["probes"];
    for (const path of PATHS) {
      probes[path] = await latency(admin, path, samples);
    }
    const echoQuiet = await echo(loadgen, addr);
    let probing = true;
    let probedRequests = 0;
    const loop = (async () => {
      while (probing) {
        await timeGet(admin, "/metrics");
        probedRequests++;
      }
    })();
    const echoProbed = await echo(loadgen, addr);
    probing = false;
    await loop;
    const before = await cpuTicks(child.pid);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    // Clock ticks are 10 ms on Linux (USER_HZ 100).
    const idleCpuMs = (await cpuTicks(child.pid) - before) * 10;
    return {
      root,
      conns,
      probes,
      echoQuiet,
      echoProbed,
      probedRequests,
      idleCpuMs,
    };
  } finally {
    for (const h of handles) await h[Symbol.asyncDispose]();
    child.kill("SIGKILL");
    await child.status;
  }
}

async function main(): Promise<void> {
  const flags = parseArgs(Deno.args, {
    string: ["old", "rounds", "conns", "samples"],
  });
  const roots = flags.old ? [flags.old, ROOT] : [ROOT];
  const dir = await Deno.makeTempDir({ prefix: "upcase-probes-" });
  try {
    const loadgen = await buildLoadgen(dir);
    for (let round = 1; round <= Number(flags.rounds ?? 1); round++) {
      for (const root of roots) {
        const result = await runProbes({
          loadgen,
          root,
          conns: Number(flags.conns ?? 20_000),
          samples: Number(flags.samples ?? 30),
        });
        const line = JSON.stringify({ round, ...result });
        Deno.stdout.writeSync(new TextEncoder().encode(`${line}\n`));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
