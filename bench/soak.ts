/**
 * Soak test: `deno task soak [--duration SECONDS] [--max-growth PERCENT]`
 * (defaults 600 and 5). It runs upcase as a child process under a mixed
 * load for the whole duration: short connections, streams, clients that
 * reset mid-stream, and idle clients that the idle timeout closes. It checks
 * every byte, samples the server's RSS and open fds, and fails if the peak
 * RSS in the last fifth of the run exceeds the peak just after the warm-up
 * (the first 20%) by the limit or more, if fds do not come back to their
 * baseline, or if any connection fails.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { runLoad } from "./loadgen.ts";

const args = parseArgs(Deno.args, {
  string: ["duration", "max-growth"],
  default: { duration: "600", "max-growth": "5" },
});
const durationS = Number(args.duration);
if (!Number.isFinite(durationS) || durationS < 5) {
  throw new RangeError(
    `Cannot parse --duration: "${args.duration}" is not a number of seconds (5 or more)`,
  );
}
const GROWTH_LIMIT = Number(args["max-growth"]) / 100;
if (!(GROWTH_LIMIT > 0)) {
  throw new RangeError(
    `Cannot parse --max-growth: "${
      args["max-growth"]
    }" is not a percentage above 0`,
  );
}
const encoder = new TextEncoder();

const mib = (kib: number) => (kib / 1024).toFixed(1);

function print(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function sample(command: string, args: string[]): number {
  const out = new Deno.Command(command, { args }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}
const rssKiB = (pid: number) => sample("ps", ["-o", "rss=", "-p", String(pid)]);
const openFds = (pid: number) =>
  sample("sh", ["-c", 'ls "/proc/$0/fd" | wc -l', String(pid)]);

const mainTs = new URL("../main.ts", import.meta.url).pathname;
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    mainTs,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--idle-timeout",
    "2",
  ],
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
const pid = server.pid;

// Read the port from the first log line, then keep draining the log.
const logLines = server.stderr.pipeThrough(new TextDecoderStream()).getReader();
let logged = "";
while (!/listening on [^\n]*:(\d+)\n/.test(logged)) {
  const r = await logLines.read();
  if (r.done) throw new Error(`upcase exited before listening:\n${logged}`);
  logged += r.value;
}
const port = Number(/listening on [^\n]*:(\d+)\n/.exec(logged)![1]);
const draining = (async () => {
  while (!(await logLines.read()).done) { /* discard */ }
})();

const deadline = Date.now() + durationS * 1000;
const totals = {
  ok: 0,
  failed: 0,
  bytes: 0,
  resets: 0,
  idle: 0,
  errors: [] as string[],
};

async function resetMidStream(): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new Uint8Array(64 * 1024).fill(0x61));
  await conn.read(new Uint8Array(1024));
  // Unread data is pending, so closing sends RST.
  conn.close();
  totals.resets++;
}

async function idleClient(): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // The server closes it after --idle-timeout; read returns EOF.
  const end = await conn.read(new Uint8Array(1)).catch(() => null);
  conn.close();
  if (end === null) totals.idle++;
}

function add(report: Awaited<ReturnType<typeof runLoad>>): void {
  totals.ok += report.ok;
  totals.failed += report.failed;
  totals.bytes += report.bytesVerified;
  totals.errors.push(...report.errors.slice(0, 5 - totals.errors.length));
}

const samples: { t: number; rss: number; fds: number }[] = [];
const started = Date.now();
const baselineFds = openFds(pid);
let lastSample = 0;
// Each cycle is bounded: a fixed count of each kind of client.
const idle: Promise<void>[] = [];
for (let cycle = 0; Date.now() < deadline && cycle < 1_000_000; cycle++) {
  // Idle clients wait for the server to close them, beside the other load.
  if (cycle % 10 === 0) idle.push(...Array.from({ length: 5 }, idleClient));
  const [churn, streams] = await Promise.all([
    runLoad({
      port,
      connections: 300,
      concurrency: 30,
      bytesPerConnection: 200,
      seed: cycle,
    }),
    runLoad({
      port,
      connections: 10,
      concurrency: 5,
      bytesPerConnection: 1 << 20,
      chunkSize: 32768,
      seed: cycle,
    }),
    ...Array.from({ length: 10 }, resetMidStream),
  ]);
  add(churn);
  add(streams);
  if (Date.now() - lastSample >= Math.min(2000, durationS * 50)) {
    lastSample = Date.now();
    samples.push({
      t: (Date.now() - started) / 1000,
      rss: rssKiB(pid),
      fds: openFds(pid),
    });
  }
}

await Promise.all(idle);
// Once the load has stopped, every connection closes and fds come back;
// this waits for that for 10 s at most.
let endFds = openFds(pid);
for (let i = 0; i < 200 && endFds !== baselineFds; i++) {
  await new Promise((r) => setTimeout(r, 50));
  endFds = openFds(pid);
}
const endRss = rssKiB(pid);
server.kill("SIGTERM");
const status = await server.status;
await draining;

// The heap breathes between collections, so each side is the peak of a
// window: just after the warm-up, and the last fifth of the run.
const peak = (from: number, to: number) =>
  Math.max(
    ...samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.rss),
    0,
  );
const warmRss = peak(durationS * 0.2, durationS * 0.4) || endRss;
const lateRss = peak(durationS * 0.8, durationS) || endRss;
const growth = (lateRss - warmRss) / warmRss;
print(`soak: ${durationS} s against upcase on port ${port}`);
print("");
print("| t (s) | RSS (MiB) | open fds |");
print("| ---: | ---: | ---: |");
for (
  const s of samples.filter((_, i) => i % Math.ceil(samples.length / 20) === 0)
) {
  print(`| ${s.t.toFixed(0)} | ${(s.rss / 1024).toFixed(1)} | ${s.fds} |`);
}
print("");
print(
  `connections: ${totals.ok} ok, ${totals.failed} failed; ${totals.resets} resets, ` +
    `${totals.idle} idle clients closed by the server; ${
      (totals.bytes / 2 ** 20).toFixed(0)
    } MiB verified`,
);
print(
  `peak RSS just after the warm-up ${mib(warmRss)} MiB, in the last fifth ` +
    `${mib(lateRss)} MiB, at the end ${mib(endRss)} MiB ` +
    `(growth ${(growth * 100).toFixed(1)}%, limit ${GROWTH_LIMIT * 100}%)`,
);
print(`open fds: ${baselineFds} at the start, ${endFds} at the end`);
print(`server exit code: ${status.code}`);
for (const error of totals.errors) print(`error: ${error}`);

const ok = totals.failed === 0 && growth < GROWTH_LIMIT &&
  endFds === baselineFds && status.code === 0;
print(ok ? "soak: passed" : "soak: FAILED");
Deno.exit(ok ? 0 : 1);
