/**
 * Soak test: `deno task soak [--duration SECONDS] [--warmup SECONDS]
 * [--max-growth PERCENT] [--figures FILE]`.
 *
 * It starts upcase as a child process and, for the whole duration, drives a
 * mixed load at it: short verified exchanges, 1 MiB streams, clients that
 * reset mid-stream, and idle clients that the server's idle timeout closes.
 * Every byte that comes back is checked. It samples the server's RSS and
 * open fds every few seconds and fails (exit code 1) if any connection
 * failed, if RSS grew by the limit or more after the warm-up (by default
 * the first 20% of the run, at least 10 s), if open fds do not come back to their baseline, if the server
 * logged an error, or if it did not exit cleanly on SIGTERM. Every loop is
 * bounded in count and in time, and a watchdog ends the run if anything
 * hangs.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { type LoadReport, runLoad, writeInChunks } from "./loadgen.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";

const IDLE_TIMEOUT_S = 2;
// A single exchange takes milliseconds and a 1 MiB stream well under a
// second; one that takes this long has hung, and fails.
const CONNECTION_TIMEOUT_MS = 30_000;
// After the duration, in-flight connections get this long to finish before
// the watchdog kills the server.
const GRACE_MS = 2 * CONNECTION_TIMEOUT_MS;
// Closing is asynchronous on the server; fds are polled every 50 ms for at
// most this long to see the last close.
const SETTLE_MS = 5_000;
const PYTHON = "/usr/bin/python3";
const RESETS_PER_ROUND = 10;
const RESETTERS = `
import socket, struct, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
payload = (bytes(range(97, 123)) * 2521)[:65536]
socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
for s in socks:
    s.sendall(payload)
reset = 0
for s in socks:
    got = b""
    while len(got) < 1024:
        chunk = s.recv(1024 - len(got))
        if not chunk:
            sys.exit(f"EOF after {len(got)} bytes")
        got += chunk
    if got != payload[:1024].upper():
        sys.exit("wrong bytes in the reply")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    reset += 1
print(reset)
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function print(line = ""): void {
  let bytes = encoder.encode(line + "\n");
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

function usage(): string {
  return [
    "Usage: deno task soak [--duration SECONDS] [--warmup SECONDS] [--max-growth PERCENT] [--figures FILE]",
    "",
    "  --duration SECONDS    how long the mixed load runs (default 600, at least 5)",
    "  --warmup SECONDS      time for the server's heap to reach its working size before",
    "                        memory is compared (default 20% of the duration, at least 10 s)",
    "  --max-growth PERCENT  most RSS growth allowed after the warm-up (default 5)",
    "  --figures FILE        append a row for docs/reliability.md to FILE (needs --allow-write)",
  ].join("\n");
}

function sample(command: string, args: string[]): number {
  const out = new Deno.Command(command, { args, stderr: "null" }).outputSync();
  return Number(decoder.decode(out.stdout).trim());
}

// Deno asks for --allow-all to read /proc, so ps and ls read it.
function rssKiB(pid: number): number {
  return sample("ps", ["-o", "rss=", "-p", String(pid)]);
}

function openFds(pid: number): number {
  return sample("sh", ["-c", 'ls "/proc/$0/fd" | wc -l', String(pid)]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
const percent = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;

/** One kind of client and what it saw. */
class Lane {
  ok = 0;
  failed = 0;
  bytes = 0;
  bytesLost = 0;
  readonly errors: string[] = [];
  constructor(readonly name: string) {}

  add(report: LoadReport): void {
    this.ok += report.ok;
    this.failed += report.failed;
    this.bytes += report.bytesVerified;
    this.bytesLost += report.bytesLost;
    for (const e of report.errors) this.fail(e, false);
  }

  fail(error: string, count = true): void {
    if (count) this.failed++;
    if (this.errors.length < 3) this.errors.push(error);
  }
}

/** The server's log, read line by line as it comes. */
class ServerLog {
  readonly closed = new Map<string, number>();
  readonly problems: string[] = [];
  problemCount = 0;
  #port = Promise.withResolvers<number>();
  readonly done: Promise<void>;

  constructor(stderr: ReadableStream<Uint8Array>) {
    this.done = this.#read(stderr);
  }

  /** The port from the "listening on" line; rejects if the log ends first. */
  get port(): Promise<number> {
    return this.#port.promise;
  }

  async #read(stderr: ReadableStream<Uint8Array>): Promise<void> {
    let buffered = "";
    for await (const text of stderr.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        this.#line(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
    if (buffered) this.#line(buffered);
    this.#port.reject(new Error("upcase exited before it logged its port"));
  }

  #line(line: string): void {
    const closed = / closed \((\w+)\)/.exec(line);
    if (closed) {
      const reason = closed[1]!;
      this.closed.set(reason, (this.closed.get(reason) ?? 0) + 1);
      if (reason === "error") this.#problem(line);
      return;
    }
    const listening = /listening on \S*:(\d+)$/.exec(line);
    if (listening) this.#port.resolve(Number(listening[1]));
    else if (/\[(WRN|ERR|FTL)\]/.test(line)) this.#problem(line);
  }

  #problem(line: string): void {
    this.problemCount++;
    if (this.problems.length < 5) this.problems.push(line);
  }
}

interface Sample {
  t: number;
  rss: number;
  fds: number;
}

async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["duration", "warmup", "max-growth", "figures"],
    boolean: ["help"],
    default: { duration: "600", "max-growth": "5" },
  });
  if (flags.help) {
    print(usage());
    return 0;
  }
  const durationS = Number(flags.duration);
  if (!Number.isFinite(durationS) || durationS < 5) {
    print(
      `soak: Cannot parse --duration: "${flags.duration}" is not a number of seconds (5 or more)`,
    );
    return 2;
  }
  // A fresh server's heap takes some seconds of this load to reach its
  // working size (about 6 s and 45 -> 175 MiB on a 2-core machine), so the
  // warm-up is a fifth of the run, but at least 10 s where the run allows.
  const warmupS = flags.warmup === undefined
    ? Math.min(Math.max(durationS * 0.2, 10), durationS * 0.7)
    : Number(flags.warmup);
  if (!(warmupS >= 0 && warmupS <= durationS * 0.7)) {
    print(
      `soak: Cannot parse --warmup: "${flags.warmup}" is not a number of seconds from 0 to 70% of --duration`,
    );
    return 2;
  }
  const maxGrowth = Number(flags["max-growth"]) / 100;
  if (!(maxGrowth > 0)) {
    print(
      `soak: Cannot parse --max-growth: "${
        flags["max-growth"]
      }" is not a percentage above 0`,
    );
    return 2;
  }
  const durationMs = durationS * 1000;
  try {
    Deno.statSync(PYTHON);
  } catch {
    print(`soak: the reset clients need ${PYTHON}; install python3`);
    return 2;
  }

  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      V8_FLAGS,
      "--allow-net",
      new URL("../main.ts", import.meta.url).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--idle-timeout",
      String(IDLE_TIMEOUT_S),
      // Info level: the port is only logged there ("listening on").
      "--log-level",
      "info",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const pid = server.pid;
  const log = new ServerLog(server.stderr);
  let exited = false;
  const status = server.status.finally(() => exited = true);
  const port = await log.port;
  const hostname = "127.0.0.1";

  // Load shaping: the run's length, and a watchdog in case anything hangs.
  const stop = new AbortController();
  const stopTimer = setTimeout(() => stop.abort(), durationMs);
  void status.then(() => stop.abort());
  let watchdogFired = false;
  const watchdog = setTimeout(() => {
    watchdogFired = true;
    server.kill("SIGKILL");
  }, durationMs + GRACE_MS);

  const churn = new Lane("churn: 256-byte exchanges, 50 at a time");
  const streams = new Lane("streams: 1 MiB each, 4 at a time");
  const resets = new Lane(
    "resets: 64 KiB sent, 1 KiB read back, then RST (SO_LINGER 0)",
  );
  const idle = new Lane(
    `idle: 16 bytes echoed, then closed by the server after ${IDLE_TIMEOUT_S} s`,
  );
  const lanes = [churn, streams, resets, idle];
  const maxRounds = Math.ceil(durationS) * 1000;

  async function runChurn(): Promise<void> {
    for (let i = 0; i < maxRounds && !stop.signal.aborted; i++) {
      churn.add(
        await runLoad({
          port,
          connections: 500,
          concurrency: 50,
          bytesPerConnection: 256,
          chunkSize: 256,
          seed: i * 16,
          signal: stop.signal,
          timeoutMs: CONNECTION_TIMEOUT_MS,
        }),
      );
    }
  }

  async function runStreams(): Promise<void> {
    for (let i = 0; i < maxRounds && !stop.signal.aborted; i++) {
      streams.add(
        await runLoad({
          port,
          connections: 8,
          concurrency: 4,
          bytesPerConnection: 1 << 20,
          chunkSize: 32 * 1024,
          seed: i * 16 + 7,
          signal: stop.signal,
          timeoutMs: CONNECTION_TIMEOUT_MS,
        }),
      );
    }
  }

  // Each reset client sends 64 KiB, checks the first KiB of the reply, and
  // closes with SO_LINGER {1, 0}, so that the kernel sends RST at once.
  // Deno cannot set SO_LINGER, and a Deno client's close sends FIN before
  // the RST, which the server reads as a clean end.
  async function runResets(): Promise<void> {
    for (let i = 0; i < maxRounds && !stop.signal.aborted; i++) {
      const out = await new Deno.Command(PYTHON, {
        args: ["-c", RESETTERS, String(port), String(RESETS_PER_ROUND)],
        stdin: "null",
      }).output();
      const reset = Number(decoder.decode(out.stdout).trim()) || 0;
      resets.ok += reset;
      resets.bytes += reset * 1024;
      if (out.code !== 0 || reset !== RESETS_PER_ROUND) {
        resets.failed += RESETS_PER_ROUND - reset;
        resets.fail(
          decoder.decode(out.stderr).trim().split("\n").at(-1)!,
          false,
        );
      }
      await sleep(250, stop.signal);
    }
  }

  // Sends 16 bytes, checks the echo, then waits for the server to close the
  // connection for idleness: not before the timeout, nor long after.
  async function idleClient(): Promise<void> {
    const conn = await Deno.connect({ hostname, port });
    const limitMs = IDLE_TIMEOUT_S * 1000 + 10_000;
    const timer = setTimeout(() => conn.close(), limitMs);
    try {
      const data = encoder.encode("idle client here");
      await writeInChunks(conn, data, data.length);
      const buf = new Uint8Array(64);
      let got = 0;
      while (got < data.length) {
        const n = await conn.read(buf.subarray(got));
        if (n === null) throw new Error(`EOF after ${got} bytes`);
        got += n;
      }
      if (decoder.decode(buf.subarray(0, got)) !== "IDLE CLIENT HERE") {
        throw new Error("wrong echo");
      }
      const quietSince = performance.now();
      const end = await conn.read(buf);
      const quietMs = performance.now() - quietSince;
      if (end !== null) throw new Error("unexpected bytes while idle");
      // The server counts from the last byte it moved, which is before the
      // client saw it; 100 ms covers the gap.
      if (quietMs < IDLE_TIMEOUT_S * 1000 - 100) {
        throw new Error(`closed after ${Math.round(quietMs)} ms idle`);
      }
      idle.ok++;
      idle.bytes += got;
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // The timer closed it.
      }
    }
  }

  async function runIdle(): Promise<void> {
    const waiting: Promise<void>[] = [];
    for (let i = 0; i < maxRounds && !stop.signal.aborted; i++) {
      for (let k = 0; k < 5; k++) {
        waiting.push(
          idleClient().catch((err) =>
            idle.fail(err instanceof Error ? err.message : String(err))
          ),
        );
      }
      await sleep(5_000, stop.signal);
    }
    await Promise.all(waiting);
  }

  const samples: Sample[] = [];
  const started = performance.now();
  const elapsedS = () => (performance.now() - started) / 1000;
  const baselineFds = openFds(pid);
  const takeSample = () => {
    if (!exited) {
      samples.push({ t: elapsedS(), rss: rssKiB(pid), fds: openFds(pid) });
    }
  };
  takeSample();
  const sampleMs = Math.min(5_000, Math.max(250, durationMs / 100));
  async function runSampler(): Promise<void> {
    for (let i = 0; i < maxRounds && !stop.signal.aborted; i++) {
      await sleep(sampleMs, stop.signal);
      takeSample();
    }
  }

  await Promise.all([
    runChurn(),
    runStreams(),
    runResets(),
    runIdle(),
    runSampler(),
  ]);
  clearTimeout(stopTimer);
  clearTimeout(watchdog);

  let endFds = exited ? NaN : openFds(pid);
  const settleBy = Date.now() + SETTLE_MS;
  while (!exited && endFds !== baselineFds && Date.now() < settleBy) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    endFds = openFds(pid);
  }
  takeSample();
  const stoppedEarly = exited;
  if (!exited) server.kill("SIGTERM");
  // No connection is open now, so the drain is immediate; the kill bounds it.
  const killTimer = setTimeout(() => server.kill("SIGKILL"), 15_000);
  const { code } = await status;
  clearTimeout(killTimer);
  await log.done;

  // The heap steps up and down by about 8% as V8 resizes it, so single
  // samples are compared through the noise: the highest RSS just after the
  // warm-up (for a fifth of the run) against the lowest of the last 10%. A
  // leak raises the floor; a heap step does not last.
  const window = (from: number, to: number) =>
    samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.rss);
  const warmEnd = warmupS + durationS * 0.2;
  const warm = window(warmupS, warmEnd);
  const late = window(Math.max(durationS * 0.9, warmEnd), Infinity);
  const warmRss = warm.length ? Math.max(...warm) : NaN;
  const lateRss = late.length ? Math.min(...late) : NaN;
  const growth = (lateRss - warmRss) / warmRss;
  const failed = lanes.reduce((n, l) => n + l.failed, 0);
  const ok = lanes.reduce((n, l) => n + l.ok, 0);
  const bytes = lanes.reduce((n, l) => n + l.bytes, 0);
  const bytesLost = lanes.reduce((n, l) => n + l.bytesLost, 0);

  print(
    `soak: ${durationS} s of mixed load against upcase ` +
      `(pid ${pid}, ${hostname}:${port}, --idle-timeout ${IDLE_TIMEOUT_S})`,
  );
  print();
  print("| t (s) | RSS (MiB) | open fds |");
  print("| ---: | ---: | ---: |");
  const every = Math.ceil(samples.length / 20);
  for (const [i, s] of samples.entries()) {
    if (i % every !== 0 && i !== samples.length - 1) continue;
    print(`| ${s.t.toFixed(1)} | ${mib(s.rss)} | ${s.fds} |`);
  }
  print();
  print("| load | ok | failed | bytes verified |");
  print("| --- | ---: | ---: | ---: |");
  for (const l of lanes) {
    print(`| ${l.name} | ${l.ok} | ${l.failed} | ${l.bytes} |`);
  }
  print(`| all | ${ok} | ${failed} | ${bytes} |`);
  print();
  const reasons = ["eof", "reset", "idle", "shutdown", "error"]
    .map((r) => `${log.closed.get(r) ?? 0} ${r}`).join(", ");
  print(`server closed connections: ${reasons}`);
  print();

  const serverResets = log.closed.get("reset") ?? 0;
  const checks: [string, string, string, boolean][] = [
    ["failed connections", String(failed), "0", failed === 0],
    [
      "RSS growth after the warm-up",
      `${percent(growth)} (peak ${mib(warmRss)} MiB from ${
        warmupS.toFixed(1)
      } to ${warmEnd.toFixed(1)} s, floor ${mib(lateRss)} MiB in the last 10%)`,
      `< ${maxGrowth * 100}%`,
      growth < maxGrowth,
    ],
    [
      "open fds",
      `${baselineFds} at the start, ${endFds} at the end`,
      "back to the start",
      endFds === baselineFds,
    ],
    [
      "mid-stream resets the server saw",
      `${serverResets} of ${resets.ok}`,
      "all",
      serverResets === resets.ok,
    ],
    [
      "server warnings and errors",
      String(log.problemCount),
      "0",
      log.problemCount === 0,
    ],
    [
      "server exit on SIGTERM",
      stoppedEarly ? `exited early, code ${code}` : `code ${code}`,
      "code 0",
      !stoppedEarly && code === 0,
    ],
    [
      "stopped by itself",
      watchdogFired ? "no: the watchdog killed the server" : "yes",
      "yes",
      !watchdogFired,
    ],
  ];
  print("| check | measured | limit | result |");
  print("| --- | --- | --- | --- |");
  for (const [name, measured, limit, pass] of checks) {
    print(`| ${name} | ${measured} | ${limit} | ${pass ? "pass" : "FAIL"} |`);
  }
  print();
  for (const l of lanes) {
    for (const e of l.errors) print(`error (${l.name.split(":")[0]}): ${e}`);
  }
  for (const p of log.problems) print(`server: ${p}`);
  print(`connections: ${ok} ok, ${failed} failed`);
  const passed = checks.every(([, , , pass]) => pass);
  print(passed ? "soak: passed" : "soak: FAILED");

  if (flags.figures) {
    const figure = {
      test: "soak",
      load: `${durationS} s of mixed load: ${ok + failed} connections ` +
        `(256-byte exchanges 50 at a time, 1 MiB streams 4 at a time, ` +
        `idle clients); ${(bytes / 2 ** 20).toFixed(0)} MiB verified`,
      faults: `${resets.ok + resets.failed} clients reset mid-stream; ` +
        `${
          idle.ok + idle.failed
        } idle clients cut by --idle-timeout ${IDLE_TIMEOUT_S}`,
      result: `${failed} failed; RSS ${mib(warmRss)} MiB after the warm-up, ` +
        `${mib(lateRss)} MiB at the end (${percent(growth)}); open fds ` +
        `${baselineFds} before and ${endFds} after; ${
          passed ? "passed" : "FAILED"
        }`,
      bytesLost,
    };
    await Deno.writeTextFile(flags.figures, JSON.stringify(figure) + "\n", {
      append: true,
    });
  }
  return passed ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
