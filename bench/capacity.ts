/**
 * Capacity and scaling of `--workers`.
 *
 * `deno task capacity --conns 100000 --workers 6` starts the supervisor with
 * that many workers, opens the connections from several Go load generator
 * processes at once (each at most 15,000 connections, because each process
 * has the same 20,000 file descriptor limit as a worker, and each with
 * source addresses of its own, because one source address has only about
 * 28,000 ephemeral ports), checks each connection with an echo exchange,
 * measures the workers' memory, then makes every connection do a second
 * verified exchange. `--scaling` instead compares 1 worker with 2 on ping-pong
 * and bulk load. `--quick` is the CI size: 6,000 connections over 3 workers.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";
import { ServerProcess } from "../tests/_helpers.ts";
import {
  buildLoadgen,
  type IdleHandle,
  type IdleResult,
  openIdle,
  runGoLoad,
} from "./loadgen_go.ts";

const MAX_PER_LOADGEN = 15_000;
const ROOT = new URL("../", import.meta.url).pathname;

/** Options for {@linkcode runCapacity}. */
export interface CapacityOptions {
  /** The Go load generator binary. */
  loadgen: string;
  /** Connections to hold open at once. */
  conns: number;
  /** Worker processes. */
  workers: number;
}

/** What {@linkcode runCapacity} measured. */
export interface CapacityResult {
  /** Connections asked for. */
  conns: number;
  /** Worker processes. */
  workers: number;
  /** Load generator processes. */
  loadgens: number;
  /** Connections that opened and passed the first echo exchange. */
  connected: number;
  /** Connections that passed the second exchange, after all were open. */
  verified: number;
  /** Errors the load generators counted. */
  errors: number;
  /** Seconds until every connection was open and checked. */
  connectSeconds: number;
  /** The workers' resident memory before any connection, in bytes. */
  rssIdle: number;
  /** The workers' resident memory with every connection open, in bytes. */
  rssLoaded: number;
  /** (rssLoaded - rssIdle) / connected, in bytes. */
  bytesPerConnection: number;
  /** Connections each worker opened, from the merged log. */
  perWorker: number[];
  /** Each load generator's first error, if it had one. */
  firstErrors: string[];
}

/** Sums the resident set sizes of the given processes, in bytes, with `ps`. */
export async function totalRss(pids: number[]): Promise<number> {
  // ps rather than /proc, which Deno opens only with --allow-all.
  const output = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", pids.join(",")],
    stdin: "null",
  }).output();
  const kbs = new TextDecoder().decode(output.stdout).trim().split(/\s+/);
  if (!output.success || kbs.length !== pids.length) {
    throw new Error(`ps did not report all of ${pids.join(",")}`);
  }
  return kbs.reduce((n, kb) => n + Number(kb) * 1024, 0);
}

function workerPids(server: ServerProcess): number[] {
  const pids = new Map<number, number>();
  for (const line of server.lines) {
    const m = /started worker (\d+) \(pid (\d+)\)/.exec(line);
    if (m) pids.set(Number(m[1]), Number(m[2]));
  }
  return [...pids.values()];
}

/**
 * Starts upcase with `--workers` as a child process and waits until all its
 * workers serve.
 *
 * @param workers How many workers.
 * @param options Extra arguments, and a command prefix such as `taskset`.
 * @returns the running server; dispose of it to kill it.
 */
export async function startWorkers(
  workers: number,
  options: { args?: string[]; prefix?: string[] } = {},
): Promise<ServerProcess> {
  const { args = [], prefix = [] } = options;
  const server = await ServerProcess.start(
    ["--workers", String(workers), ...args],
    {
      command: [
        ...prefix,
        Deno.execPath(),
        "run",
        V8_FLAGS,
        "--allow-net",
        "--allow-run",
        "--allow-env",
        `${ROOT}main.ts`,
      ],
    },
  );
  await server.waitForLine(/listening on \S+ with \d+ workers/);
  return server;
}

/**
 * Holds `conns` connections open across `workers` workers, each checked by
 * an echo exchange when it opens and again once all are open, and measures
 * the workers' memory.
 *
 * @param options The load generator, the connections and the workers.
 * @returns the figures.
 */
export async function runCapacity(
  options: CapacityOptions,
): Promise<CapacityResult> {
  const { loadgen, conns, workers } = options;
  await using server = await startWorkers(workers, {
    args: ["--idle-timeout", "0", "--admin", "127.0.0.1:0"],
  });
  const pids = workerPids(server);
  const rssIdle = await totalRss(pids);
  const loadgens = Math.ceil(conns / MAX_PER_LOADGEN);
  const handles: IdleHandle[] = [];
  const started = performance.now();
  try {
    // Started one after another, each holding its connections while the
    // next opens: each process gets 10 s to open its share, and 100,000
    // dials at once from all of them overran that on two cores.
    const net = 1 + Math.floor(Math.random() * 254);
    for (let i = 0; i < loadgens; i++) {
      const share = Math.floor(conns / loadgens) +
        (i < conns % loadgens ? 1 : 0);
      // Two source addresses of its own per process: about 56,000 ports.
      // A fresh range each run, as the last run's closed connections sit in
      // TIME_WAIT for a minute, and a source address with its ports nearly
      // all taken makes every dial slow.
      const sources = [`127.${net}.${i + 1}.1`, `127.${net}.${i + 1}.2`];
      handles.push(
        await openIdle(loadgen, {
          addr: `127.0.0.1:${server.port}`,
          conns: share,
          sources,
        }),
      );
    }
    const connectSeconds = (performance.now() - started) / 1000;
    const rssLoaded = await totalRss(pids);
    const adminLine = await server.waitForLine(/admin listening on/);
    const adminPort = Number(/:(\d+) \(totals/.exec(adminLine)?.[1]);
    const status = await (await fetch(
      `http://127.0.0.1:${adminPort}/status.json`,
    )).json() as { activeTotal: number };
    const connected = handles.reduce((n, h) => n + h.ready.connected, 0);
    // Every connection is open by now. One load generator at a time, as each
    // has 10 s for its second round, and 100,000 exchanges and closes at
    // once overran that on two cores.
    const results: IdleResult[] = [];
    for (const h of handles.splice(0)) results.push(await h.finish());
    const firstErrors = results.map((r) => r.firstError).filter((e) => e);
    const perWorker = perWorkerCounts(server, workers);
    if (status.activeTotal !== connected) {
      throw new Error(
        `The supervisor counted ${status.activeTotal} open connections, the load generators ${connected}`,
      );
    }
    return {
      conns,
      workers,
      loadgens,
      connected,
      verified: results.reduce((n, r) => n + r.secondExchangeOk, 0),
      errors: results.reduce((n, r) => n + r.errors, 0) +
        handles.reduce((n, h) => n + h.ready.errors, 0),
      connectSeconds,
      rssIdle,
      rssLoaded,
      bytesPerConnection: (rssLoaded - rssIdle) / connected,
      perWorker,
      firstErrors,
    };
  } finally {
    for (const h of handles) await h[Symbol.asyncDispose]();
  }
}

// From the merged log: how many connections each worker opened.
function perWorkerCounts(server: ServerProcess, workers: number): number[] {
  const counts = new Array<number>(workers).fill(0);
  for (const line of server.lines) {
    const m = /^\[w(\d+)\] .* connection \d+ opened/.exec(line);
    if (m) counts[Number(m[1]) - 1]! += 1;
  }
  return counts;
}

/** One row of the scaling comparison. */
export interface ScalingRow {
  /** What ran where. */
  label: string;
  /** Ping-pong messages per second (64 connections, 64-byte messages). */
  pingpongMsgsPerSec: number;
  /** Ping-pong median round trip, µs. */
  pingpongP50Us: number;
  /** Bulk throughput, 1e6 bytes per second (16 connections). */
  bulkMBps: number;
}

/**
 * Compares 1 worker with 2 on this machine, the load generator pinned to
 * core 1: one worker on core 0; two workers on core 0 alone (the cost of
 * the processes at equal CPU); two workers on cores 0 and 1 (sharing core 1
 * with the load generator, since the machine has only two).
 *
 * @param loadgen The Go load generator binary.
 * @param seconds Measured seconds per run.
 * @returns one row per arrangement.
 */
export async function runScaling(
  loadgen: string,
  seconds = 5,
): Promise<ScalingRow[]> {
  const arrangements = [
    { label: "1 worker, core 0", workers: 1, cpus: "0" },
    { label: "2 workers, core 0", workers: 2, cpus: "0" },
    { label: "2 workers, cores 0-1", workers: 2, cpus: "0,1" },
  ];
  const rows: ScalingRow[] = [];
  for (const { label, workers, cpus } of arrangements) {
    const prefix = ["taskset", "-c", cpus];
    // One worker runs without the supervisor, as `--workers 1` does.
    await using server = workers === 1
      ? await ServerProcess.start(["--log-level", "info"], {
        command: [
          ...prefix,
          Deno.execPath(),
          "run",
          V8_FLAGS,
          "--allow-net",
          `${ROOT}main.ts`,
        ],
      })
      : await startWorkers(workers, { prefix });
    const addr = `127.0.0.1:${server.port}`;
    const sources = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    const pp = await runGoLoad(loadgen, {
      addr,
      mode: "pingpong",
      conns: 64,
      duration: seconds,
      sources,
      cpu: 1,
    });
    const bulk = await runGoLoad(loadgen, {
      addr,
      mode: "bulk",
      conns: 16,
      duration: seconds,
      sources,
      cpu: 1,
    });
    if (pp.errors > 0 || bulk.errors > 0) {
      throw new Error(`${label}: ${pp.firstError || bulk.firstError}`);
    }
    rows.push({
      label,
      pingpongMsgsPerSec: Math.round(pp.msgsPerSec),
      pingpongP50Us: pp.p50Us,
      bulkMBps: Math.round(bulk.mbPerSec),
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const flags = parseArgs(Deno.args, {
    string: ["conns", "workers", "seconds"],
    boolean: ["quick", "scaling"],
  });
  const dir = await Deno.makeTempDir({ prefix: "upcase-capacity-" });
  const out = (text: string) =>
    Deno.stdout.writeSync(new TextEncoder().encode(`${text}\n`));
  try {
    const loadgen = await buildLoadgen(dir);
    if (flags.scaling) {
      const rows = await runScaling(loadgen, Number(flags.seconds ?? 5));
      out(JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
      return;
    }
    const result = await runCapacity({
      loadgen,
      conns: Number(flags.conns ?? (flags.quick ? 6000 : 100_000)),
      workers: Number(flags.workers ?? (flags.quick ? 3 : 6)),
    });
    out(JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2));
    if (result.verified !== result.conns || result.errors > 0) Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
