/**
 * The side-by-side benchmark: `deno task bench [--quick] [--only a,b]`.
 *
 * Runs upcase and every peer in `bench/peers/` one after another, each on
 * core 0, against the Go load generator on core 1: bulk, ping-pong, idle
 * memory, and for some a saturation sweep of paced ping-pong; and writes
 * `docs/bench.md` and `docs/bench.svg` (a `--quick` run prints the report
 * and writes nothing).
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import {
  type PingpongFigures,
  renderMarkdown,
  renderSvg,
  type RunInfo,
  type ServerFigures,
  type SweepStep,
  UPCASE_ROWS,
} from "./bench_report.ts";
import {
  buildLoadgen,
  type HoldMode,
  type LoadOptions,
  type LoadResultFor,
  openIdle,
  type PingpongResult,
  runGoLoad,
} from "./loadgen_go.ts";
import { measureMemoryStates } from "./memory_states.ts";
import { type Peer, PEERS } from "./peers/peers.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SERVER_CPU = 0;
const LOAD_CPU = 1;
const decoder = new TextDecoder();
/** Linux's USER_HZ, the unit of CPU times in /proc. */
const CLOCK_TICKS = 100;

interface Server {
  name: string;
  label: string;
  tools: string[];
  build?: Peer["build"];
  command(port: number, built?: string): string[];
  env?: Record<string, string>;
  /** Where the bound port is announced. */
  announce: { stream: "stdout" | "stderr"; pattern: RegExp };
  /** Whether the memory table (by connection state and mode) is measured. */
  memory?: boolean;
  /** Why the server cannot run yet, or undefined if it can. */
  unavailable?: () => string | undefined;
}

const UPCASE: Server = {
  name: UPCASE_ROWS.deno,
  label: "this project, `deno run` with its V8 and permission flags",
  tools: [],
  command: (port) => [
    Deno.execPath(),
    "run",
    V8_FLAGS,
    "--allow-net",
    "--allow-env",
    `${ROOT}main.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
  ],
  announce: { stream: "stderr", pattern: /listening on 127\.0\.0\.1:(\d+)/ },
  memory: true,
};

/**
 * upcase on Deno's `node:net` engine. It runs once `main.ts --help` lists
 * `--transport`, so the row appears as soon as the flag exists.
 */
const UPCASE_NODE: Server = {
  ...UPCASE,
  name: UPCASE_ROWS.node,
  label: "this project with `--transport node` (Deno's `node:net`)",
  command: (port) => [...UPCASE.command(port), "--transport", "node"],
  unavailable: () =>
    upcaseHelp().includes("--transport")
      ? undefined
      : "main.ts --help does not list --transport yet",
};

/** upcase's transports, each a row that the report's targets apply to. */
const UPCASE_SERVERS: Server[] = [UPCASE, UPCASE_NODE];

/** The servers the saturation sweep runs for. */
const SWEEP_SERVERS = new Set([
  ...UPCASE_SERVERS.map((s) => s.name),
  "go-64k",
  "node-data",
  "deno-node-net",
  "deno-raw",
  "c-epoll",
]);

let helpText: string | undefined;
function upcaseHelp(): string {
  helpText ??= decoder.decode(
    new Deno.Command(Deno.execPath(), {
      args: ["run", `${ROOT}main.ts`, "--help"],
      stderr: "null",
    }).outputSync().stdout,
  );
  return helpText;
}

function peerServer(peer: Peer): Server {
  return {
    ...peer,
    announce: { stream: "stdout", pattern: /^listening (\d+)/m },
  };
}

function hasTool(tool: string): boolean {
  const dirs = tool.includes("/")
    ? [""]
    : (Deno.env.get("PATH") ?? "").split(":").map((d) => `${d}/`);
  return dirs.some((d) => {
    try {
      return Deno.statSync(`${d}${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** A server process pinned to its core, with its port and pid. */
class Running implements AsyncDisposable {
  constructor(
    readonly child: Deno.ChildProcess,
    readonly port: number,
    readonly drained: Promise<unknown>,
  ) {}

  /** Where it listens, as `host:port`. */
  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(server: Server, built?: string): Promise<Running> {
    const [cmd, ...args] = [
      "taskset",
      "-c",
      String(SERVER_CPU),
      ...server.command(0, built),
    ];
    const child = new Deno.Command(cmd!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(server.env ? { env: server.env } : {}),
    }).spawn();
    const watched = server.announce.stream === "stdout"
      ? child.stdout
      : child.stderr;
    const other = server.announce.stream === "stdout"
      ? child.stderr
      : child.stdout;
    const otherDrained = other.pipeTo(new WritableStream());
    const reader = watched.getReader();
    let text = "";
    const deadline = setTimeout(() => child.kill("SIGKILL"), 20_000);
    let match: RegExpMatchArray | null = null;
    while (!(match = text.match(server.announce.pattern))) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    clearTimeout(deadline);
    // Keep reading, so that a chatty server never blocks on a full pipe.
    const drained = Promise.all([
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })(),
      otherDrained,
    ]);
    if (!match) {
      await drained;
      await child.status;
      throw new Error(`${server.name} did not announce its port: ${text}`);
    }
    return new Running(child, Number(match[1]), drained);
  }

  /** Resident memory in KiB, from `ps` (Deno reads /proc only with --allow-all). */
  rssKiB(): number {
    const out = new Deno.Command("ps", {
      args: ["-o", "rss=", "-p", String(this.child.pid)],
    }).outputSync();
    const kib = Number(decoder.decode(out.stdout).trim());
    if (!out.success || !(kib > 0)) throw new Error("ps found no RSS");
    return kib;
  }

  /** CPU seconds used so far, user and system, from /proc via `cat`. */
  cpuSeconds(): number {
    const out = new Deno.Command("cat", {
      args: [`/proc/${this.child.pid}/stat`],
    }).outputSync();
    // The fields after the command name, which is in parentheses.
    const fields = decoder.decode(out.stdout).split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.child.status;
    await this.drained;
  }
}

interface Sizes {
  idleConns: number;
  pingpongConns: number;
  seconds: number;
  warmup: number;
  /** Connections per state in upcase's memory table. */
  memoryConns: Record<HoldMode, number>;
  /**
   * The saturation sweep's paced steps: each connection's pause after a
   * reply, in ms. The last step, 0 (saturation), is the ping-pong scenario.
   */
  sweepPausesMs: number[];
}

/** One load generator run against a running server, with its CPU use. */
interface Measured<M extends LoadOptions["mode"]> {
  result: LoadResultFor<M>;
  /** The server's CPU use over the whole run, warm-up included, in % of one core. */
  serverCpuPercent: number;
  /** The server's CPU seconds within the measured window. */
  windowCpuSeconds: number;
}

/** Runs one load, sampling the server's CPU time at the window's edges. */
async function load<M extends LoadOptions["mode"]>(
  running: Running,
  options: LoadOptions & { mode: M; loadgen: string },
): Promise<Measured<M>> {
  const edges: Partial<Record<"start" | "end", number>> = {};
  const cpu = running.cpuSeconds();
  const started = performance.now();
  const { loadgen, ...rest } = options;
  const result = await runGoLoad(loadgen, {
    ...rest,
    cpu: LOAD_CPU,
    onWindow: (edge) => edges[edge] = running.cpuSeconds(),
  });
  if (result.errors > 0) {
    throw new Error(`${result.errors} errors: ${result.firstError}`);
  }
  if (edges.start === undefined || edges.end === undefined) {
    throw new Error("The load generator reported no measurement window");
  }
  return {
    result,
    serverCpuPercent: serverCpu(running, cpu, started),
    windowCpuSeconds: edges.end - edges.start,
  };
}

/** Work per CPU-second; undefined when the server used too little to tell. */
function perCpuSecond(work: number, cpuSeconds: number): number | undefined {
  // /proc counts in ticks of 10 ms: below 10 of them the ratio is noise.
  return cpuSeconds >= 10 / CLOCK_TICKS ? work / cpuSeconds : undefined;
}

/** The report's ping-pong figures from one run. */
function pingpongFigures(m: Measured<"pingpong">): PingpongFigures {
  const r: PingpongResult = m.result;
  const perCpu = perCpuSecond(r.msgs, m.windowCpuSeconds);
  return {
    msgsPerSec: r.msgsPerSec,
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    p999Us: r.p999Us,
    minConnMsgs: r.minConnMsgs,
    meanConnMsgs: r.connected > 0 ? r.msgs / r.connected : 0,
    starvedConnWindows: r.starvedConnWindows,
    ...(perCpu === undefined ? {} : { msgsPerCpuSecond: perCpu }),
  };
}

/** Runs one scenario on a fresh server process; a failure becomes a note. */
type ScenarioRunner = (
  scenario: string,
  body: (addr: string, running: Running) => Promise<void>,
) => Promise<void>;

/** What every scenario function gets. */
interface Scenarios {
  run: ScenarioRunner;
  figures: ServerFigures;
  loadgen: string;
  sizes: Sizes;
}

/** Runs every scenario for one server, each on a fresh process. */
async function measure(
  server: Server,
  loadgen: string,
  sizes: Sizes,
  built?: string,
): Promise<ServerFigures> {
  const figures: ServerFigures = {
    name: server.name,
    label: server.label,
    notes: [],
    loadCpu: {},
    serverCpu: {},
    perCpuSecond: {},
  };
  const run: ScenarioRunner = async (scenario, body) => {
    // A fresh process for every scenario, so that one cannot tax the next.
    await using running = await Running.start(server, built);
    try {
      await body(`127.0.0.1:${running.port}`, running);
    } catch (err) {
      figures.notes.push(`${scenario}: ${(err as Error).message}`);
    }
    log(`  ${server.name} ${scenario} done`);
  };
  const ctx: Scenarios = { run, figures, loadgen, sizes };
  await run("idle", async (addr, running) => {
    figures.idleKB = await measureIdle(running, { addr, loadgen, sizes });
  });
  await measureLoads(ctx);
  if (SWEEP_SERVERS.has(server.name)) figures.sweep = await measureSweep(ctx);
  if (server.memory) {
    const memory = await measureMemory(server, loadgen, sizes);
    figures.memory = memory.cells;
    figures.notes.push(...memory.notes);
  }
  return figures;
}

/** Bulk at 1 and 100 connections, ping-pong at many and at 1. */
async function measureLoads({ run, figures, loadgen, sizes }: Scenarios) {
  const timing = { duration: sizes.seconds, warmup: sizes.warmup, loadgen };
  const record = <M extends LoadOptions["mode"]>(
    key: string,
    m: Measured<M>,
    work: number,
  ) => {
    figures.loadCpu[key] = m.result.cpuPercent;
    figures.serverCpu[key] = m.serverCpuPercent;
    const perCpu = perCpuSecond(work, m.windowCpuSeconds);
    if (perCpu !== undefined) figures.perCpuSecond[key] = perCpu;
  };
  for (const [key, conns] of [["bulk1", 1], ["bulk100", 100]] as const) {
    await run(key, async (addr, running) => {
      const m = await load(running, { addr, mode: "bulk", conns, ...timing });
      figures[key] = m.result.mbPerSec;
      record(key, m, m.result.bytesInWindow / 1e6);
    });
  }
  for (
    const [key, conns] of [
      ["pingpong", sizes.pingpongConns],
      ["pingpong1", 1],
    ] as const
  ) {
    await run(key, async (addr, running) => {
      const m = await load(running, {
        addr,
        mode: "pingpong",
        conns,
        ...timing,
      });
      figures[key] = pingpongFigures(m);
      record(key, m, m.result.msgs);
    });
  }
}

/**
 * Ping-pong at each paced step, then saturation: the ping-pong scenario
 * measured before, which has the same connections and sizes.
 */
async function measureSweep(
  { run, figures, loadgen, sizes }: Scenarios,
): Promise<SweepStep[]> {
  const steps: SweepStep[] = [];
  for (const pauseMs of sizes.sweepPausesMs) {
    await run(`sweep ${pauseMs} ms`, async (addr, running) => {
      const m = await load(running, {
        addr,
        loadgen,
        mode: "pingpong",
        conns: sizes.pingpongConns,
        pause: pauseMs / 1000,
        duration: sizes.seconds,
        warmup: sizes.warmup,
      });
      steps.push({
        ...pingpongFigures(m),
        pauseMs,
        serverCpuPercent: m.serverCpuPercent,
        loadCpuPercent: m.result.cpuPercent,
      });
    });
  }
  if (figures.pingpong) {
    steps.push({
      ...figures.pingpong,
      pauseMs: 0,
      serverCpuPercent: figures.serverCpu["pingpong"] ?? 0,
      loadCpuPercent: figures.loadCpu["pingpong"] ?? 0,
    });
  }
  return steps;
}

/** Resident memory per idle connection, in KB (1000 bytes). */
async function measureIdle(
  running: Running,
  options: { addr: string; loadgen: string; sizes: Sizes },
): Promise<number> {
  const conns = options.sizes.idleConns;
  const before = running.rssKiB();
  await using idle = await openIdle(options.loadgen, {
    addr: options.addr,
    conns,
    cpu: LOAD_CPU,
  });
  if (idle.ready.errors > 0) {
    throw new Error(`${idle.ready.errors} connections failed to open`);
  }
  const during = running.rssKiB();
  const done = await idle.finish();
  if (done.errors > 0) {
    throw new Error(`${done.errors} errors: ${done.firstError}`);
  }
  return (during - before) * 1024 / 1000 / conns;
}

/** The memory table, each cell on a fresh server with the mode's arguments. */
function measureMemory(server: Server, loadgen: string, sizes: Sizes) {
  return measureMemoryStates({
    loadgen,
    conns: sizes.memoryConns,
    cpu: LOAD_CPU,
    start: (args) =>
      Running.start({
        ...server,
        command: (port, built) => [...server.command(port, built), ...args],
      }),
    log: (line) => log(`  ${server.name} ${line}`),
  });
}

/** The server's CPU use since `cpu` and `started`, in % of one core. */
function serverCpu(running: Running, cpu: number, started: number): number {
  const seconds = (performance.now() - started) / 1000;
  return (running.cpuSeconds() - cpu) / seconds * 100;
}

async function kernels(): Promise<Record<string, number>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "--json", `${ROOT}bench/kernel_bench.ts`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const report = JSON.parse(decoder.decode(out.stdout)) as {
    benches: {
      name: string;
      group?: string;
      results: { ok?: { avg: number } }[];
    }[];
  };
  const result: Record<string, number> = {};
  for (const b of report.benches) {
    const avg = b.results[0]?.ok?.avg;
    if (b.group === "64 KiB" && avg) result[b.name] = 65536 / avg;
  }
  return result;
}

function version(cmd: string[], pick = (s: string) => s.split("\n")[0]!) {
  try {
    const out = new Deno.Command(cmd[0]!, { args: cmd.slice(1) }).outputSync();
    return pick(decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim();
  } catch {
    return "missing";
  }
}

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${line}\n`));
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args, {
    boolean: ["quick"],
    string: ["only"],
  });
  const quick = args.quick as boolean;
  const only = args.only ? String(args.only).split(",") : undefined;
  // A stuck client holds about 5 MB of kernel socket buffers (not in the
  // server's RSS), so no-read stops at 200 of them.
  const sizes: Sizes = quick
    ? {
      idleConns: 500,
      pingpongConns: 100,
      seconds: 1,
      warmup: 0.3,
      memoryConns: {
        idle: 200,
        "bulk-idle": 200,
        "mid-stream": 200,
        "no-read": 20,
      },
      sweepPausesMs: [5],
    }
    : {
      idleConns: 10_000,
      pingpongConns: 1000,
      seconds: 5,
      warmup: 1,
      memoryConns: {
        idle: 10_000,
        "bulk-idle": 10_000,
        "mid-stream": 10_000,
        "no-read": 200,
      },
      // 1,000 connections offer at most 50k, 100k, 200k and 500k msg/s:
      // below, about at, and above one core's saturation here.
      sweepPausesMs: [20, 10, 5, 2],
    };
  if (!hasTool("taskset") || !hasTool("go")) {
    throw new Error(
      "The benchmark needs taskset and go (apt-get install util-linux golang-go)",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "upcase-bench-" });
  let failed = false;
  try {
    log("building the load generator");
    const loadgen = await buildLoadgen(dir);
    const all: ServerFigures[] = [];
    for (const server of [...UPCASE_SERVERS, ...PEERS.map(peerServer)]) {
      if (only && !only.includes(server.name)) continue;
      const unavailable = server.unavailable?.();
      if (unavailable !== undefined) {
        // Not a skip: the row waits for a feature, not for a tool.
        log(`not measuring ${server.name}: ${unavailable}`);
        continue;
      }
      const missing = server.tools.filter((t) => !hasTool(t));
      if (missing.length > 0) {
        log(`skipping ${server.name}: ${missing.join(", ")} not installed`);
        all.push({
          name: server.name,
          label: server.label,
          notes: [`skipped: ${missing.join(", ")} not installed`],
          loadCpu: {},
          serverCpu: {},
          perCpuSecond: {},
        });
        continue;
      }
      let built: string | undefined;
      if (server.build) {
        built = `${dir}/${server.name}`;
        const [cmd, ...rest] = server.build.cmd(built);
        const out = await new Deno.Command(cmd!, {
          args: rest,
          cwd: server.build.cwd,
          env: { GOPROXY: "off", GOTOOLCHAIN: "local" },
        }).output();
        if (!out.success) {
          throw new Error(
            `Cannot build ${server.name}: "${cmd}" exited with ${out.code}:\n${
              decoder.decode(out.stderr)
            }`,
          );
        }
      }
      log(`measuring ${server.name}`);
      all.push(await measure(server, loadgen, sizes, built));
    }
    log("measuring the kernels");
    const info: RunInfo = {
      date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
      machine: `${navigator.hardwareConcurrency} cores, ${
        Math.round(Deno.systemMemoryInfo().total / 2 ** 30)
      } GiB, Linux ${Deno.osRelease()}`,
      versions: [
        `Deno ${Deno.version.deno}`,
        version(["node", "--version"]).replace(/^v/, "Node "),
        version(["go", "version"]),
        version(
          [
            "/usr/bin/python3",
            "-c",
            "import gevent,sys;print('gevent',gevent.__version__,'on Python',sys.version.split()[0])",
          ],
        ),
      ],
      sizes,
      kernels: await kernels(),
      quick,
    };
    const markdown = renderMarkdown(all, info);
    // A scenario that failed, or a peer skipped when CI wants every tool,
    // fails the run; the report is written either way.
    const strict = Deno.env.get("UPCASE_REQUIRE_TOOLS") === "1";
    failed = all.some((s) =>
      s.notes.some((n) => strict || !n.startsWith("skipped"))
    );
    if (quick) {
      Deno.stdout.writeSync(new TextEncoder().encode(markdown));
    } else {
      await Deno.writeTextFile(`${ROOT}docs/bench.md`, markdown);
      await Deno.writeTextFile(`${ROOT}docs/bench.svg`, renderSvg(all));
      await new Deno.Command(Deno.execPath(), {
        args: ["fmt", `${ROOT}docs/bench.md`],
        stderr: "null",
      }).output();
      log("wrote docs/bench.md and docs/bench.svg");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  if (failed) {
    log("some scenarios failed; see the notes at the end of the report");
    Deno.exitCode = 1;
  }
}

if (import.meta.main) await main();
