/**
 * Turns one benchmark run into `docs/bench.md` and `docs/bench.svg`.
 *
 * @module
 */
import type { MemoryCell } from "./memory_states.ts";

/** The report's names for upcase's rows, one per transport. */
export const UPCASE_ROWS = { deno: "upcase", node: "upcase-node" } as const;

/** The factors the issue's targets name, in one place. */
export const TARGETS = {
  /** At saturation, the least-served connection against the mean. */
  leastServedOfMean: 0.5,
  /** Ping-pong p999 against Go's, at most. */
  p999OfGo: 2,
  /** Bulk MB/s against the C peer's, at least. */
  bulkOfC: 0.95,
  /** The node transport's idle memory per fresh connection, KB, at most. */
  nodeIdleKB: 5,
  /** The node transport's bulk MB/s against the deno transport's, at least. */
  nodeBulkOfDeno: 0.9,
  /**
   * "No worse than deno-raw" allows this much, the run-to-run spread of a
   * figure on this shared machine.
   */
  noWorseSlack: 0.05,
} as const;

/** One server's figures in one run; a missing figure is `undefined`. */
export interface ServerFigures {
  /** Short name, e.g. `upcase`, `gevent`. */
  name: string;
  /** What the server is. */
  label: string;
  /** Bulk 64 KiB writes, 1 connection, MB/s. */
  bulk1?: number;
  /** Bulk, 100 connections, MB/s. */
  bulk100?: number;
  /** Ping-pong 64 B, many connections. */
  pingpong?: PingpongFigures;
  /** Ping-pong 64 B, one connection. */
  pingpong1?: PingpongFigures;
  /** Resident memory per idle connection, in KB (1000 bytes). */
  idleKB?: number;
  /** Resident memory per connection by connection state and mode (upcase only). */
  memory?: MemoryCell[];
  /** Why a server or scenario has no figures. */
  notes: string[];
  /** The load generator's CPU use per scenario, in % of one core. */
  loadCpu: Record<string, number>;
  /** The server's CPU use per scenario (warm-up included), in % of one core. */
  serverCpu: Record<string, number>;
  /**
   * Work per second of the server's CPU time (user + system) in the
   * measured window, per scenario: messages for ping-pong, MB for bulk.
   */
  perCpuSecond: Record<string, number>;
  /** Ping-pong at paced rates up to saturation, the last step unpaced. */
  sweep?: SweepStep[];
}

/** One step of the saturation sweep. */
export interface SweepStep extends PingpongFigures {
  /** Each connection's pause after a reply, in ms; 0 is saturation. */
  pauseMs: number;
  /** The server's CPU use, warm-up included, in % of one core. */
  serverCpuPercent: number;
  /** The load generator's CPU use in the window, in % of one core. */
  loadCpuPercent: number;
}

/** Ping-pong figures. */
export interface PingpongFigures {
  /** Messages per second. */
  msgsPerSec: number;
  /** Round-trip percentiles in µs. */
  p50Us: number;
  /** 99th percentile in µs. */
  p99Us: number;
  /** 99.9th percentile in µs. */
  p999Us: number;
  /** Messages completed by the least served connection. */
  minConnMsgs: number;
  /** Messages completed per connection, on average. */
  meanConnMsgs: number;
  /** (connection, second) pairs in which a connection got no reply. */
  starvedConnWindows: number;
  /** Messages per second of the server's CPU time, if it used enough to tell. */
  msgsPerCpuSecond?: number;
}

/** What the run was and where. */
export interface RunInfo {
  /** ISO date of the run. */
  date: string;
  /** Machine description. */
  machine: string;
  /** Tool versions. */
  versions: string[];
  /** Scenario sizes, for the text. */
  sizes: { idleConns: number; pingpongConns: number; seconds: number };
  /** Kernel throughput in GB/s by benchmark name. */
  kernels: Record<string, number>;
  /** Whether this was a `--quick` smoke run. */
  quick: boolean;
}

const fmt = (v: number | undefined, digits = 0) =>
  v === undefined ? "–" : v.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0
    ? "–"
    : `${(a / b).toFixed(2)}x`;
const ms = (us: number | undefined) =>
  us === undefined
    ? "–"
    : (us / 1000).toFixed(us < 1000 ? 3 : us < 10_000 ? 2 : 1);

/** One line of the report's targets; `met` is undefined when it cannot tell. */
export interface Target {
  /** What was checked, with the figures. */
  text: string;
  /** Whether the target was met. */
  met: boolean | undefined;
}

/** Target checks: each is a line of the report. */
export function targets(all: ServerFigures[], info: RunInfo): Target[] {
  const us = all.find((s) => s.name === "upcase");
  const peers = all.filter((s) => s.name !== "upcase");
  const byName = (n: string) => peers.find((s) => s.name === n);
  const out: Target[] = [];
  const idle = us?.idleKB;
  out.push({
    text: `Idle memory at most 6 KB per connection at ${
      fmt(info.sizes.idleConns)
    } connections: ${fmt(idle, 1)} KB`,
    met: idle === undefined ? undefined : idle <= 6,
  });
  const afterBulk = idleAfterBulk(us?.memory ?? []);
  if (afterBulk.length > 0) {
    out.push({
      text: `Idle after bulk at most 1.25x fresh idle (${
        fmt(afterBulk[0]!.conns)
      } connections, RSS): ${
        afterBulk.map((r) =>
          `${r.mode} ${r.ratio.toFixed(2)}x (${fmt(r.after, 1)} against ${
            fmt(r.fresh, 1)
          } KB)`
        ).join("; ")
      }`,
      met: afterBulk.every((r) => r.ratio <= 1.25),
    });
  }
  const go = byName("go-64k")?.pingpong;
  const pp = us?.pingpong;
  if (go && pp) {
    const ratio = pp.msgsPerSec / go.msgsPerSec;
    out.push({
      text: `Ping-pong ${info.sizes.pingpongConns} connections: ${
        ratio.toFixed(2)
      }x Go's msg/s (target 1.1x); p99 ${ms(pp.p99Us)} ms vs Go ${
        ms(go.p99Us)
      } ms; p999 ${ms(pp.p999Us)} ms vs Go ${ms(go.p999Us)} ms; ${
        fmt(pp.starvedConnWindows)
      } starved connection-seconds, least-served connection ${
        fmt(pp.minConnMsgs)
      } messages`,
      met: ratio >= 1.1 && pp.p99Us <= go.p99Us && pp.p999Us <= go.p999Us &&
        pp.starvedConnWindows === 0,
    });
  }
  const gevent = byName("gevent");
  for (const key of ["bulk1", "bulk100"] as const) {
    const a = us?.[key];
    const b = gevent?.[key];
    if (a === undefined || b === undefined) continue;
    out.push({
      text: `Bulk 64 KiB, ${key === "bulk1" ? 1 : 100} connection${
        key === "bulk1" ? "" : "s"
      }: ${(a / b).toFixed(2)}x gevent's MB/s (target 1.0x)`,
      met: a >= b,
    });
  }
  const p1 = us?.pingpong1?.p50Us;
  const bestP1 = Math.min(
    ...peers.map((s) => s.pingpong1?.p50Us ?? Infinity),
  );
  if (p1 !== undefined && bestP1 < Infinity) {
    out.push({
      text: `Ping-pong 1 connection: p50 ${ms(p1)} ms, best peer ${
        ms(bestP1)
      } ms`,
      met: p1 <= bestP1,
    });
  }
  out.push(...transportTargets(all, info));
  out.push(...nodeTargets(all));
  const raw = noWorseThanRaw(all);
  if (raw) out.push(raw);
  const mixed = info.kernels["unicode mode, mixed text"];
  for (const [name, gbps] of Object.entries(info.kernels)) {
    if (/hostile/.test(name) && mixed !== undefined) {
      // The worst inputs for unicode mode must not cost the server much more
      // than ordinary text does.
      out.push({
        text: `Kernel "${name}": ${
          (gbps / mixed).toFixed(2)
        }x mixed text (target 0.5x)`,
        met: gbps >= mixed / 2,
      });
      continue;
    }
    if (!/^(ascii|unicode)/.test(name) || /mixed|byte loop/.test(name)) {
      continue;
    }
    out.push({
      text: `Kernel "${name}": ${gbps.toFixed(2)} GB/s (target 4)`,
      met: gbps >= 4,
    });
  }
  return out;
}

/** The issue's targets for each of upcase's transports in the run. */
function transportTargets(all: ServerFigures[], info: RunInfo): Target[] {
  const get = (n: string) => all.find((s) => s.name === n);
  const go = get("go-64k")?.pingpong;
  const c = get("c-epoll");
  const out: Target[] = [];
  for (const name of Object.values(UPCASE_ROWS)) {
    const us = get(name);
    const pp = us?.pingpong;
    if (pp) {
      out.push({
        text: `${name} at saturation (ping-pong, ${
          fmt(info.sizes.pingpongConns)
        } connections): least-served connection ${
          fmt(pp.minConnMsgs)
        } messages, ${ratio(pp.minConnMsgs, pp.meanConnMsgs)} the mean of ${
          fmt(pp.meanConnMsgs)
        } (target ${TARGETS.leastServedOfMean}x)`,
        met: pp.minConnMsgs >= TARGETS.leastServedOfMean * pp.meanConnMsgs,
      });
    }
    if (pp && go) {
      out.push({
        text: `${name} ping-pong p999 ${ms(pp.p999Us)} ms, ${
          ratio(pp.p999Us, go.p999Us)
        } Go's ${ms(go.p999Us)} ms (target at most ${TARGETS.p999OfGo}x)`,
        met: pp.p999Us <= TARGETS.p999OfGo * go.p999Us,
      });
    }
    for (const key of ["bulk1", "bulk100"] as const) {
      const [a, b] = [us?.[key], c?.[key]];
      if (a === undefined || b === undefined) continue;
      out.push({
        text: `${name} bulk 64 KiB, ${bulkConns(key)}: ${
          ratio(a, b)
        } the C peer's MB/s (target ${TARGETS.bulkOfC}x)`,
        met: a >= TARGETS.bulkOfC * b,
      });
    }
  }
  return out;
}

/** The node transport against the deno transport, once both are in the run. */
function nodeTargets(all: ServerFigures[]): Target[] {
  const deno = all.find((s) => s.name === UPCASE_ROWS.deno);
  const node = all.find((s) => s.name === UPCASE_ROWS.node);
  const out: Target[] = [];
  if (node?.idleKB !== undefined && deno?.idleKB !== undefined) {
    out.push({
      text: `${node.name} idle memory ${
        fmt(node.idleKB, 1)
      } KB/conn (target ${TARGETS.nodeIdleKB} KB; the deno transport's: ${
        fmt(deno.idleKB, 1)
      } KB)`,
      met: node.idleKB <= TARGETS.nodeIdleKB,
    });
  }
  for (const key of ["bulk1", "bulk100"] as const) {
    const [a, b] = [node?.[key], deno?.[key]];
    if (a === undefined || b === undefined) continue;
    out.push({
      text: `${UPCASE_ROWS.node} bulk 64 KiB, ${bulkConns(key)}: ${
        ratio(a, b)
      } the deno transport's MB/s (target ${TARGETS.nodeBulkOfDeno}x)`,
      met: a >= TARGETS.nodeBulkOfDeno * b,
    });
  }
  return out;
}

/** A column of the figures, and which way is better. */
interface Column {
  name: string;
  value: (s: ServerFigures) => number | undefined;
  higherIsBetter: boolean;
}

/** The columns that the deno transport is held against deno-raw in. */
const COLUMNS: Column[] = [
  { name: "bulk 1 conn", value: (s) => s.bulk1, higherIsBetter: true },
  { name: "bulk 100 conns", value: (s) => s.bulk100, higherIsBetter: true },
  {
    name: "ping-pong msg/s",
    value: (s) => s.pingpong?.msgsPerSec,
    higherIsBetter: true,
  },
  { name: "p50 µs", value: (s) => s.pingpong?.p50Us, higherIsBetter: false },
  { name: "p99 µs", value: (s) => s.pingpong?.p99Us, higherIsBetter: false },
  { name: "p999 µs", value: (s) => s.pingpong?.p999Us, higherIsBetter: false },
  {
    name: "least-served",
    value: (s) => s.pingpong?.minConnMsgs,
    higherIsBetter: true,
  },
  {
    name: "starved conn-seconds",
    value: (s) => s.pingpong?.starvedConnWindows,
    higherIsBetter: false,
  },
  {
    name: "ping-pong 1 conn p50 µs",
    value: (s) => s.pingpong1?.p50Us,
    higherIsBetter: false,
  },
  { name: "idle KB/conn", value: (s) => s.idleKB, higherIsBetter: false },
  {
    name: "ping-pong msg per CPU-s",
    value: (s) => s.perCpuSecond["pingpong"],
    higherIsBetter: true,
  },
  {
    name: "bulk 100 MB per CPU-s",
    value: (s) => s.perCpuSecond["bulk100"],
    higherIsBetter: true,
  },
];

/** The deno transport against the bare Deno loop, column by column. */
function noWorseThanRaw(all: ServerFigures[]): Target | undefined {
  const us = all.find((s) => s.name === UPCASE_ROWS.deno);
  const raw = all.find((s) => s.name === "deno-raw");
  if (!us || !raw) return undefined;
  const slack = TARGETS.noWorseSlack;
  const compared: string[] = [];
  const worse: string[] = [];
  for (const col of COLUMNS) {
    const [a, b] = [col.value(us), col.value(raw)];
    if (a === undefined || b === undefined) continue;
    compared.push(col.name);
    const bad = col.higherIsBetter ? a < b * (1 - slack) : a > b * (1 + slack);
    const digits = Math.min(a, b) < 100 ? 1 : 0;
    if (bad) {
      worse.push(`${col.name} ${fmt(a, digits)} against ${fmt(b, digits)}`);
    }
  }
  if (compared.length === 0) return undefined;
  return {
    text: `${UPCASE_ROWS.deno} (deno transport) no worse than the bare Deno ` +
      `loop (deno-raw) in any of ${compared.length} columns, within ${
        slack * 100
      }%: ${
        worse.length === 0 ? "worse in none" : `worse in ${worse.join("; ")}`
      }`,
    met: worse.length === 0,
  };
}

function bulkConns(key: "bulk1" | "bulk100"): string {
  return key === "bulk1" ? "1 connection" : "100 connections";
}

/** Idle after bulk against fresh idle, per mode, from the memory table. */
function idleAfterBulk(
  cells: MemoryCell[],
): {
  mode: string;
  conns: number;
  fresh: number;
  after: number;
  ratio: number;
}[] {
  const out = [];
  for (const after of cells.filter((c) => c.state === "bulk-idle")) {
    const fresh = cells.find((c) =>
      c.state === "idle" && c.mode === after.mode
    );
    if (!fresh) continue;
    out.push({
      mode: after.mode,
      conns: after.conns,
      fresh: fresh.kbPerConn,
      after: after.kbPerConn,
      ratio: after.kbPerConn / fresh.kbPerConn,
    });
  }
  return out;
}

const STATE_NAMES: Record<MemoryCell["state"], string> = {
  idle: "fresh idle: one 16-byte exchange",
  "bulk-idle": "idle after bulk: one 256 KiB exchange",
  "mid-stream": "stopped mid-stream: 256 KiB + 1 byte streamed, not closed",
  "no-read": "stuck: sends until the server stops reading, never reads",
};

/** The memory table: one row per state, one column per mode. */
function memoryTable(cells: MemoryCell[]): string[] {
  const modes = [...new Set(cells.map((c) => c.mode))];
  const states = [...new Set(cells.map((c) => c.state))];
  const heads: Record<string, string> = {
    ascii: "ASCII mode KB/conn",
    unicode: "`--unicode`, ΐ KB/conn",
  };
  const lines = [
    `| state | connections | ${modes.map((m) => heads[m] ?? m).join(" | ")} |`,
    `|---|--:|${modes.map(() => "--:").join("|")}|`,
  ];
  for (const state of states) {
    const row = modes.map((m) =>
      cells.find((c) => c.state === state && c.mode === m)
    );
    const conns = row.find((c) => c)?.conns;
    lines.push(
      `| ${STATE_NAMES[state]} | ${fmt(conns)} | ${
        row.map((c) => fmt(c?.kbPerConn, 1)).join(" | ")
      } |`,
    );
  }
  return lines;
}

/** Explanations, from this run's own figures, for the targets missed. */
function findings(all: ServerFigures[]): string[] {
  const get = (n: string) => all.find((s) => s.name === n);
  const us = get("upcase");
  const raw = get("deno-raw-512");
  const go = get("go-64k");
  const out: string[] = [];
  if (us?.idleKB !== undefined && us.idleKB > 6 && raw?.idleKB !== undefined) {
    out.push(
      `Idle memory: the same read/write loop with nothing else and a ` +
        `512-byte buffer (deno-raw-512) holds ${fmt(raw.idleKB, 1)} KB per ` +
        `idle connection in this run, with V8's default young generation, ` +
        `which upcase caps (src/cli/v8_flags.ts). A pending ` +
        `\`conn.read()\` alone costs about 1.2 KB of JS heap per ` +
        `connection; see docs/deno_upstream.md. ` +
        `\`--v8-flags=--optimize-for-size\` trades some throughput for less ` +
        `memory; see the README.`,
    );
  }
  const node = get(UPCASE_ROWS.node);
  const bareNode = get("deno-node-net");
  if (
    node?.idleKB !== undefined && node.idleKB > TARGETS.nodeIdleKB &&
    bareNode?.idleKB !== undefined && us?.idleKB !== undefined &&
    raw?.idleKB !== undefined
  ) {
    out.push(
      `upcase-node idle memory: Deno's \`node:net\` with a bare \`data\` ` +
        `handler (deno-node-net) holds ${fmt(bareNode.idleKB, 1)} KB per ` +
        `idle connection in this run. upcase-node has no socket object (it ` +
        `serves each connection at the engine's handle), but adds what ` +
        `upcase adds on either transport: its connection task, with the ` +
        `pump's waiting read and their async frames, and the limits and ` +
        `idle-timeout bookkeeping (on the deno transport upcase holds ` +
        `${fmt(us.idleKB, 1)} KB, with V8's young generation capped, ` +
        `src/cli/v8_flags.ts, and deno-raw-512 ${fmt(raw.idleKB, 1)} KB ` +
        `without).`,
    );
  }
  const missed = idleAfterBulk(us?.memory ?? []).filter((r) => r.ratio > 1.25);
  if (missed.length > 0) {
    out.push(
      `Idle after bulk: the burst left ${
        missed.map((r) =>
          `${fmt((r.after - r.fresh) * r.conns / 1000, 1)} MB (${r.mode})`
        ).join(" and ")
      } more resident than the same connections fresh, with every ` +
        `connection back on a 512-byte buffer. That is memory the process ` +
        `keeps after a burst, not memory each connection holds: the buffer ` +
        `arena (up to 16 MiB of WebAssembly memory once touched), freed ` +
        `arrays whose pages the allocator keeps, and V8's heap grown by the ` +
        `burst; in unicode mode, output that grows is a new array per read, ` +
        `which V8 frees only at a later collection.`,
    );
  }
  const goLoad = go?.loadCpu["pingpong"];
  if (goLoad !== undefined && goLoad >= 95) {
    out.push(
      `Ping-pong throughput against Go: the load generator ran at ` +
        `${fmt(goLoad)}% of its core against Go, so Go's figure is the load ` +
        `generator's ceiling, not Go's. On this 2-core machine (one core for ` +
        `the server, one for the load) 1.1x Go cannot be shown.`,
    );
  }
  const rawPp = get("deno-raw")?.pingpong;
  if (us?.pingpong && us.pingpong.starvedConnWindows > 0 && rawPp) {
    out.push(
      rawPp.starvedConnWindows > 0
        ? `Ping-pong fairness: the plain Deno loop (deno-raw) starves too ` +
          `(${fmt(rawPp.starvedConnWindows)} connection-seconds without a ` +
          `reply, p999 ${ms(rawPp.p999Us)} ms), so the starvation comes ` +
          `from how Deno polls socket operations, not from upcase; see ` +
          `docs/deno_upstream.md for what was tried and the reproduction.`
        : `Ping-pong fairness: in this run the plain Deno loop (deno-raw) ` +
          `left no connection a whole second without a reply, but its p999 ` +
          `was ${ms(rawPp.p999Us)} ms: how Deno polls socket operations ` +
          `at saturation differs from run to run; see docs/deno_upstream.md ` +
          `§3 for the reproduction.`,
    );
  }
  const behindC = bulkBehindC(all);
  if (behindC) out.push(behindC);
  const p1 = us?.pingpong1?.p50Us;
  const best = all.filter((s) => s !== us && s.pingpong1)
    .sort((a, b) => a.pingpong1!.p50Us - b.pingpong1!.p50Us)[0];
  const rawP1 = get("deno-raw")?.pingpong1?.p50Us;
  if (p1 !== undefined && best && p1 > best.pingpong1!.p50Us && rawP1) {
    out.push(
      `Ping-pong, 1 connection: upcase's p50 (${ms(p1)} ms) is ` +
        `${fmt(p1 - best.pingpong1!.p50Us, 1)} µs behind ${best.name}'s; the ` +
        `bare Deno loop (deno-raw) has ${ms(rawP1)} ms in the same run, so ` +
        `the gap is the cost of a round trip through Deno's socket ` +
        `operations, and within the run-to-run spread of a few µs here.`,
    );
  }
  return out;
}

// Why upcase's bulk is behind the C peer's, from the run's CPU figures:
// per MB, upcase's server spends more CPU, and the load generator, which C
// keeps busy, idles against it and has to be woken for each reply.
function bulkBehindC(all: ServerFigures[]): string | undefined {
  const c = all.find((s) => s.name === "c-epoll");
  if (!c) return undefined;
  const misses: string[] = [];
  for (const name of Object.values(UPCASE_ROWS)) {
    const us = all.find((s) => s.name === name);
    for (const key of ["bulk1", "bulk100"] as const) {
      const [a, b] = [us?.[key], c[key]];
      if (a === undefined || b === undefined) continue;
      if (a >= TARGETS.bulkOfC * b) continue;
      misses.push(
        `${name} ${bulkConns(key)}: ${ratio(a, b)}, ${
          fmt(us!.perCpuSecond[key] ?? 0)
        } MB per server CPU-second against C's ${
          fmt(c.perCpuSecond[key] ?? 0)
        }, load generator at ${fmt(us!.loadCpu[key] ?? 0)}% of its core ` +
          `against C's ${fmt(c.loadCpu[key] ?? 0)}%`,
      );
    }
  }
  if (misses.length === 0) return undefined;
  return `Bulk against the C peer (${misses.join("; ")}): each MB costs ` +
    `upcase's server more CPU than C's. Part is user space: with 100 ` +
    `connections about 17% of upcase's CPU is Deno's runtime, V8 and the ` +
    `kernel call, against 6% for C. The rest is the kernel: a load ` +
    `generator that idles must be woken for each reply, and the server pays ` +
    `for that wakeup. docs/deno_upstream.md §9 has the profile.`;
}

/**
 * Renders the report as Markdown.
 *
 * @param all Every server's figures, upcase first.
 * @param info The run's date, machine and sizes.
 * @returns the text of `docs/bench.md`.
 */
export function renderMarkdown(all: ServerFigures[], info: RunInfo): string {
  const us = all.find((s) => s.name === "upcase");
  const lines: string[] = [];
  lines.push("# Benchmark: upcase against gevent, Node, Go and C", "");
  lines.push(
    info.quick
      ? "A `--quick` smoke run: short and small, not for comparison."
      : "Produced by one `deno task bench` run; do not edit by hand.",
    "",
  );
  lines.push(`- Date: ${info.date}`, `- Machine: ${info.machine}`);
  for (const v of info.versions) lines.push(`- ${v}`);
  lines.push(
    "- Each server runs pinned to core 0 (`taskset -c 0`), the Go load " +
      "generator (`bench/loadgen_go/`) to core 1. Every reply byte is " +
      "verified. Each figure is from the same run.",
    `- Bulk: 64 KiB writes for ${info.sizes.seconds} s after 1 s of ` +
      `warm-up. Ping-pong: 64-byte messages, one in flight per ` +
      `connection. Idle: resident memory (VmRSS) after ` +
      `${fmt(info.sizes.idleConns)} connections each made one exchange, ` +
      "minus the server's memory before, per connection (KB = 1000 bytes).",
    "",
  );
  lines.push("## Targets", "");
  for (const t of targets(all, info)) {
    const mark = t.met === undefined ? "?" : t.met ? "met" : "NOT met";
    lines.push(`- **${mark}**: ${t.text}`);
  }
  const why = findings(all);
  if (why.length > 0) {
    lines.push(
      "",
      "## Why a target is not met",
      "",
      ...why.map((w) => `- ${w}`),
    );
  }
  lines.push(...transportChoice(all));
  lines.push("", "## Figures", "");
  const n = info.sizes.pingpongConns;
  lines.push(
    `| server | bulk 1 conn MB/s | bulk 100 conns MB/s | ping-pong ${n} conns msg/s | msg per server CPU-s | p50 / p99 / p999 ms | least-served / mean conn msgs | starved conn-seconds | ping-pong 1 conn p50 ms | idle KB/conn |`,
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  );
  for (const s of all) {
    const pp = s.pingpong;
    lines.push(
      `| ${s.name === "upcase" ? "**upcase**" : s.name}: ${s.label} | ${
        fmt(s.bulk1)
      } | ${fmt(s.bulk100)} | ${fmt(pp?.msgsPerSec)} | ${
        fmt(pp?.msgsPerCpuSecond)
      } | ${ms(pp?.p50Us)} / ${ms(pp?.p99Us)} / ${ms(pp?.p999Us)} | ${
        fmt(pp?.minConnMsgs)
      } / ${fmt(pp?.meanConnMsgs)} | ${fmt(pp?.starvedConnWindows)} | ${
        ms(s.pingpong1?.p50Us)
      } | ${fmt(s.idleKB, 1)} |`,
    );
  }
  lines.push(...sweepSection(all, info));
  for (const s of all.filter((s) => s.memory && s.memory.length > 0)) {
    lines.push("", `## Memory by connection state (${s.name})`, "");
    lines.push(
      "Resident memory (VmRSS, as `ps` shows it) of a fresh server process " +
        "per cell, once every connection is in the state, minus the RSS " +
        "just before the connections opened, per connection (KB = 1000 " +
        "bytes). At most 200 connections get into their state at once. " +
        "In `--unicode` the clients send ΐ (U+0390), which grows from 2 " +
        "bytes to 6, the most any text grows. Kernel socket buffers are not " +
        "in RSS: a stuck client also holds about 5 MB of them, which is why " +
        "that row has fewer connections.",
      "",
      ...memoryTable(s.memory!),
    );
  }
  lines.push("", "## upcase against each peer", "");
  lines.push(
    "Ratios above 1 favour upcase (for memory and latency, the peer's figure over upcase's).",
    "",
    "| peer | bulk 1 | bulk 100 | ping-pong msg/s | ping-pong msg per CPU-s | ping-pong p99 | ping-pong 1 p50 | idle memory |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  );
  for (const s of all) {
    if (s === us) continue;
    lines.push(
      `| ${s.name} | ${ratio(us?.bulk1, s.bulk1)} | ${
        ratio(us?.bulk100, s.bulk100)
      } | ${ratio(us?.pingpong?.msgsPerSec, s.pingpong?.msgsPerSec)} | ${
        ratio(us?.pingpong?.msgsPerCpuSecond, s.pingpong?.msgsPerCpuSecond)
      } | ${ratio(s.pingpong?.p99Us, us?.pingpong?.p99Us)} | ${
        ratio(s.pingpong1?.p50Us, us?.pingpong1?.p50Us)
      } | ${ratio(s.idleKB, us?.idleKB)} |`,
    );
  }
  lines.push("", "## Uppercase kernels (`Deno.bench`, 64 KiB)", "");
  lines.push("| kernel | GB/s |", "|---|--:|");
  for (const [name, gbps] of Object.entries(info.kernels)) {
    lines.push(`| ${name} | ${gbps.toFixed(2)} |`);
  }
  lines.push("", "## CPU use", "");
  const keys = Object.keys(all[0]?.loadCpu ?? {});
  lines.push(
    "In % of one core: the server (warm-up included) / the load generator. " +
      "A server near 100 was the bottleneck; a load generator near 100 set " +
      "the pace itself, so the server's figure is a lower bound.",
    "",
    "| server | " + keys.join(" | ") + " |",
    "|---|" + keys.map(() => "--:").join("|") + "|",
  );
  for (const s of all) {
    lines.push(
      `| ${s.name} | ${
        keys.map((k) => `${fmt(s.serverCpu[k])} / ${fmt(s.loadCpu[k])}`)
          .join(" | ")
      } |`,
    );
  }
  lines.push("", ...perCpuTable(all));
  const notes = all.flatMap((s) => s.notes.map((n) => `- ${s.name}: ${n}`));
  if (notes.length > 0) lines.push("", "## Notes", "", ...notes);
  return lines.join("\n") + "\n";
}

/** The saturation sweep: one row per server and step. */
function sweepSection(all: ServerFigures[], info: RunInfo): string[] {
  const swept = all.filter((s) => s.sweep && s.sweep.length > 0);
  if (swept.length === 0) return [];
  const n = info.sizes.pingpongConns;
  const lines = [
    "",
    `## Saturation sweep (ping-pong, ${fmt(n)} connections, 64 bytes)`,
    "",
    "Each connection waits the pause after every reply before its next " +
    "message, so the offered load is at most connections / pause; a pause " +
    "of 0 is saturation (the ping-pong scenario above). Below saturation " +
    "every server should reach the offered rate with low latency; at it, " +
    "how evenly it serves its connections shows in least-served against " +
    "the mean. Msg per server CPU-s is messages in the window over the " +
    "server's CPU time (user + system) in the same window: with the load " +
    "generator capping absolute rates on 2 cores, this is the fair " +
    "comparison.",
    "",
    "| server | pause ms | offered at most msg/s | msg/s | p50 / p99 / p999 ms | least-served / mean msgs | msg per server CPU-s | server / load CPU % |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const s of swept) {
    for (const step of s.sweep!) {
      const offered = step.pauseMs > 0 ? n / (step.pauseMs / 1000) : undefined;
      lines.push(
        `| ${s.name} | ${step.pauseMs || "0 (saturation)"} | ${
          offered === undefined ? "–" : fmt(offered)
        } | ${fmt(step.msgsPerSec)} | ${ms(step.p50Us)} / ${ms(step.p99Us)} / ${
          ms(step.p999Us)
        } | ${fmt(step.minConnMsgs)} / ${fmt(step.meanConnMsgs)} | ${
          fmt(step.msgsPerCpuSecond)
        } | ${fmt(step.serverCpuPercent)} / ${fmt(step.loadCpuPercent)} |`,
      );
    }
  }
  return lines;
}

/** Work per second of server CPU time, per scenario. */
function perCpuTable(all: ServerFigures[]): string[] {
  return [
    "Work per second of the server's CPU time (user + system, from " +
    "/proc) in the measured window: on 2 cores the load generator caps " +
    "absolute rates, so this is the fair comparison.",
    "",
    "| server | bulk 1 conn MB per CPU-s | bulk 100 conns MB per CPU-s | ping-pong msg per CPU-s | ping-pong 1 conn msg per CPU-s |",
    "|---|--:|--:|--:|--:|",
    ...all.map((s) =>
      `| ${s.name} | ${
        ["bulk1", "bulk100", "pingpong", "pingpong1"].map((k) =>
          fmt(s.perCpuSecond[k])
        ).join(" | ")
      } |`
    ),
  ];
}

/**
 * Renders the chart: one panel per column, one bar per server, then the
 * saturation sweep as two line charts.
 *
 * @param all Every server's figures, upcase first.
 * @returns the text of `docs/bench.svg`.
 */
export function renderSvg(all: ServerFigures[]): string {
  const bars = barPanels(all);
  const sweep = sweepCharts(all, bars.height);
  const width = bars.width;
  const height = bars.height + sweep.height;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...bars.parts,
    ...sweep.parts,
    "</svg>",
  ].join("\n") + "\n";
}

/** A part of the chart: its SVG elements and its size. */
interface ChartPart {
  parts: string[];
  width: number;
  height: number;
}

const esc = (t: string) =>
  t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Panel width in the chart, two to a row. */
const PANEL_W = 400;

/** One bar panel per column, two to a row. */
function barPanels(all: ServerFigures[]): ChartPart {
  const panels: [string, (s: ServerFigures) => number | undefined][] = [
    ["Bulk, 1 conn (MB/s, higher is better)", (s) => s.bulk1],
    ["Bulk, 100 conns (MB/s)", (s) => s.bulk100],
    ["Ping-pong, many conns (msg/s)", (s) => s.pingpong?.msgsPerSec],
    ["Ping-pong, msg per server CPU-second", (s) => s.perCpuSecond["pingpong"]],
    [
      "Bulk, 100 conns, MB per server CPU-second",
      (s) => s.perCpuSecond["bulk100"],
    ],
    ["Idle memory (KB/conn, lower is better)", (s) => s.idleKB],
  ];
  const barH = 14, gap = 4, labelW = 120, barW = 220;
  const panelH = 24 + all.length * (barH + gap);
  const parts: string[] = [];
  panels.forEach(([title, value], i) => {
    const x0 = (i % 2) * PANEL_W, y0 = Math.floor(i / 2) * panelH;
    const max = Math.max(...all.map((s) => value(s) ?? 0), 1);
    parts.push(
      `<text x="${x0 + 4}" y="${y0 + 14}" font-weight="bold">${
        esc(title)
      }</text>`,
    );
    all.forEach((s, j) => {
      const y = y0 + 22 + j * (barH + gap);
      const v = value(s);
      const w = v === undefined ? 0 : Math.max(1, (v / max) * barW);
      const color = UPCASE_COLORS[s.name] ?? "#868e96";
      parts.push(
        `<text x="${x0 + labelW - 4}" y="${y + barH - 3}" text-anchor="end">${
          esc(s.name)
        }</text>`,
        `<rect x="${x0 + labelW}" y="${y}" width="${
          w.toFixed(1)
        }" height="${barH}" fill="${color}"/>`,
        `<text x="${x0 + labelW + w + 4}" y="${y + barH - 3}">${
          v === undefined ? "–" : fmt(v, v < 100 ? 1 : 0)
        }</text>`,
      );
    });
  });
  const rows = Math.ceil(panels.length / 2);
  return { parts, width: PANEL_W * 2, height: rows * panelH + 10 };
}

const LINE_COLORS = ["#1971c2", "#2f9e44", "#7048e8", "#0c8599", "#495057"];
const UPCASE_COLORS: Record<string, string> = {
  [UPCASE_ROWS.deno]: "#d9480f",
  [UPCASE_ROWS.node]: "#f59f00",
};

/**
 * The sweep as two line charts, one line per server over the steps:
 * least-served over the mean (1 is perfectly even), and p999 on a log
 * scale.
 */
function sweepCharts(all: ServerFigures[], top: number): ChartPart {
  const swept = all.filter((s) => s.sweep && s.sweep.length > 0);
  if (swept.length === 0) return { parts: [], width: 0, height: 0 };
  const pauses = [
    ...new Set(swept.flatMap((s) => s.sweep!.map((p) => p.pauseMs))),
  ]
    .sort((a, b) => (b || -1) - (a || -1));
  const plotW = PANEL_W - 90, plotH = 150;
  const x = (pause: number) =>
    pauses.length < 2
      ? plotW / 2
      : (pauses.indexOf(pause) / (pauses.length - 1)) * plotW;
  const p999s = swept.flatMap((s) => s.sweep!.map((p) => p.p999Us))
    .filter((v) => v > 0);
  // Whole decades, from at most 0.1 ms to at least 1 ms.
  const lo = Math.floor(Math.log10(Math.min(...p999s, 100)));
  const hi = Math.ceil(Math.log10(Math.max(...p999s, 1000)));
  const decades = Array.from({ length: hi - lo + 1 }, (_, k) => hi - k);
  // Each chart maps a step to 0 (top) .. 1 (bottom), with labelled ticks.
  const charts: [
    string,
    (p: SweepStep) => number,
    { at: number; label: string }[],
  ][] = [
    [
      "Sweep: least-served / mean (1 = even)",
      (p) =>
        p.meanConnMsgs > 0
          ? 1 - Math.min(1, p.minConnMsgs / p.meanConnMsgs)
          : 1,
      [{ at: 0, label: "1" }, { at: 0.5, label: "0.5" }, {
        at: 1,
        label: "0",
      }],
    ],
    [
      "Sweep: p999 (ms, log scale)",
      (p) => p.p999Us > 0 ? (hi - Math.log10(p.p999Us)) / (hi - lo) : 1,
      decades.map((d) => ({ at: (hi - d) / (hi - lo), label: ms(10 ** d) })),
    ],
  ];
  const parts: string[] = [];
  charts.forEach(([title, y, ticks], i) => {
    const x0 = i * PANEL_W + 50, y0 = top + 24;
    parts.push(
      `<text x="${i * PANEL_W + 4}" y="${top + 14}" font-weight="bold">${
        esc(title)
      }</text>`,
      `<rect x="${x0}" y="${y0}" width="${plotW}" height="${plotH}" fill="none" stroke="#ced4da"/>`,
      ...ticks.map((t) =>
        `<text x="${x0 - 4}" y="${
          (y0 + t.at * plotH + 4).toFixed(1)
        }" text-anchor="end">${t.label}</text>`
      ),
      ...pauses.map((p) =>
        `<text x="${x0 + x(p)}" y="${y0 + plotH + 14}" text-anchor="middle">${
          p === 0 ? "sat." : `${p} ms`
        }</text>`
      ),
    );
    swept.forEach((s, j) => {
      const color = UPCASE_COLORS[s.name] ??
        LINE_COLORS[j % LINE_COLORS.length]!;
      const points = s.sweep!.map((p) =>
        `${(x0 + x(p.pauseMs)).toFixed(1)},${(y0 + y(p) * plotH).toFixed(1)}`
      );
      parts.push(
        `<polyline points="${
          points.join(" ")
        }" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
      if (i === 0) {
        const ly = top + 24 + plotH + 28 + j * 14;
        parts.push(
          `<rect x="${x0}" y="${
            ly - 9
          }" width="12" height="10" fill="${color}"/>`,
          `<text x="${x0 + 16}" y="${ly}">${esc(s.name)}</text>`,
        );
      }
    });
  });
  return {
    parts,
    width: PANEL_W * 2,
    height: 24 + plotH + 28 + swept.length * 14 + 10,
  };
}

/**
 * Which transport to pick, from this run's figures: fairness and tail
 * latency at saturation, bulk speed, idle memory, side by side.
 */
export function transportChoice(all: ServerFigures[]): string[] {
  const deno = all.find((s) => s.name === UPCASE_ROWS.deno);
  const node = all.find((s) => s.name === UPCASE_ROWS.node);
  if (!deno?.pingpong || !node?.pingpong) return [];
  const fair = (s: ServerFigures) =>
    s.pingpong!.minConnMsgs / s.pingpong!.meanConnMsgs;
  const row = (label: string, a: string, b: string) =>
    `| ${label} | ${a} | ${b} |`;
  const opt = (v: number | undefined, digits = 0) =>
    v === undefined ? "–" : fmt(v, digits);
  return [
    "",
    "## Which transport",
    "",
    "`--transport deno` (the default) against `--transport node`, in this run:",
    "",
    "| | deno | node |",
    "|---|--:|--:|",
    row(
      "ping-pong msg/s at saturation",
      fmt(deno.pingpong.msgsPerSec),
      fmt(node.pingpong.msgsPerSec),
    ),
    row(
      "least-served connection / mean",
      fmt(fair(deno), 2),
      fmt(fair(node), 2),
    ),
    row(
      "p999 ms",
      fmt(deno.pingpong.p999Us / 1000, 1),
      fmt(node.pingpong.p999Us / 1000, 1),
    ),
    row("bulk 1 conn MB/s", opt(deno.bulk1), opt(node.bulk1)),
    row("bulk 100 conns MB/s", opt(deno.bulk100), opt(node.bulk100)),
    row("idle KB/conn", opt(deno.idleKB, 1), opt(node.idleKB, 1)),
    "",
    fair(node) > fair(deno)
      ? "Pick `node` where the server may run saturated with many busy " +
        "connections, so that none starves" +
        (lower(node.idleKB, deno.idleKB)
          ? ", and where idle memory matters"
          : "") +
        "; pick `deno` for the highest bulk throughput" +
        (lower(deno.idleKB, node.idleKB) ? " and the least idle memory" : "") +
        ", or where descriptors may run out (the node engine cannot report " +
        "it; docs/deno_upstream.md)."
      : "In this run `node` was not fairer than `deno` at saturation; " +
        "`deno`, the default, is the choice.",
  ];
}

function lower(a: number | undefined, b: number | undefined): boolean {
  return a !== undefined && b !== undefined && a < b;
}
