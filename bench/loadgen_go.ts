/**
 * Runs the Go load generator in `bench/loadgen_go/` from Deno: builds it,
 * runs a bulk or ping-pong load, or holds connections open in a state (idle,
 * idle after bulk, stuck, cut off mid-stream) while the caller measures the
 * server.
 *
 * The load generator is in Go so that, pinned to one core beside the
 * server, it is not the bottleneck. It checks every byte of every reply and
 * reports its own CPU use; a `cpuPercent` near 100 means the figures are the
 * load generator's limit, not the server's.
 *
 * @module
 */

const SOURCE_DIR = decodeURIComponent(
  new URL("./loadgen_go/", import.meta.url).pathname,
);
// The Go program ends itself within its connect timeout (10 s) + warm-up +
// duration + a grace (40 s for bulk, 10 s otherwise); this margin only catches a bug in that promise.
const KILL_MARGIN_S = 30;
const decoder = new TextDecoder();

/** How {@linkcode runGoLoad} drives the server. */
export interface LoadOptions {
  /** The server, as `host:port`. */
  addr: string;
  /** `bulk` streams data through each connection; `pingpong` sends one message at a time. */
  mode: "bulk" | "pingpong";
  /** Number of connections. */
  conns: number;
  /**
   * Bulk: bytes per write; ping-pong: bytes per message.
   *
   * @default {65536 for bulk, 64 for pingpong}
   */
  size?: number;
  /**
   * Measured seconds.
   *
   * @default {5}
   */
  duration?: number;
  /**
   * Seconds of load before the measurement starts, not counted.
   *
   * @default {1}
   */
  warmup?: number;
  /** Local source IPs, used round-robin, to get past per-address limits. */
  sources?: string[];
  /** The core to pin the load generator to with `taskset`; unpinned if absent. */
  cpu?: number;
  /**
   * Ping-pong: seconds each connection waits after a reply before its next
   * message; 0 sends at once, which saturates the server.
   *
   * @default {0}
   */
  pause?: number;
  /**
   * Called as the measurement window opens and closes, within a few
   * milliseconds, e.g. to sample the server's CPU time over the window.
   */
  onWindow?: (edge: "start" | "end") => void;
}

/** Fields that every mode of the load generator reports. */
export interface CommonResult {
  /** Connections asked for. */
  conns: number;
  /** Connections that opened. */
  connected: number;
  /** Bulk: bytes per write; ping-pong: bytes per message; idle: 16. */
  size: number;
  /** The measurement window in seconds (idle: the time stdin stayed open). */
  seconds: number;
  /** Failed dials, failed connections and wrong replies, each counted once. */
  errors: number;
  /** The first error, with the stream offset of a wrong byte; empty if none. */
  firstError: string;
  /** The load generator's own CPU time over the window, as % of one core. */
  cpuPercent: number;
  /** User CPU seconds over the window. */
  cpuUserS: number;
  /** System CPU seconds over the window. */
  cpuSysS: number;
  /** Go's GOMAXPROCS, which follows the `taskset` pinning. */
  gomaxprocs: number;
  /** Seconds it took to open all the connections. */
  connectSeconds: number;
  /** The process's exit code: 0 only if `errors` is 0. */
  exitCode: number;
}

/** What a bulk run measured. */
export interface BulkResult extends CommonResult {
  /** The mode. */
  mode: "bulk";
  /** Verified bytes received in the window per second, in 1e6 bytes. */
  mbPerSec: number;
  /** Verified bytes received in the window. */
  bytesInWindow: number;
  /** Bytes sent over the whole run. */
  bytesSent: number;
  /** Bytes received and verified over the whole run; equals `bytesSent` on success. */
  bytesVerified: number;
  /** The slowest connection's rate over the window, in MB/s. */
  minConnMBps: number;
  /** The fastest connection's rate over the window, in MB/s. */
  maxConnMBps: number;
}

/** What a ping-pong run measured. */
export interface PingpongResult extends CommonResult {
  /** The mode. */
  mode: "pingpong";
  /** Messages sent after the warm-up whose reply came before the end. */
  msgs: number;
  /** `msgs` per second. */
  msgsPerSec: number;
  /** Median round-trip time in µs. */
  p50Us: number;
  /** 99th percentile round-trip time in µs. */
  p99Us: number;
  /** 99.9th percentile round-trip time in µs. */
  p999Us: number;
  /** Longest round-trip time in µs. */
  maxUs: number;
  /** Messages completed by the least served connection. */
  minConnMsgs: number;
  /** Messages completed by the most served connection. */
  maxConnMsgs: number;
  /** Length of a fairness window: 1 second. */
  windowSeconds: number;
  /** Whole windows in the measurement (a partial last second is left out). */
  windows: number;
  /** The fewest messages any connection completed in any window. */
  minConnWindowMsgs: number;
  /** (connection, window) pairs in which a connection completed nothing. */
  starvedConnWindows: number;
  /** The pause after each reply, in ms: 0 unless the run was paced. */
  pauseMs: number;
}

/** What {@linkcode runGoLoad} returns. */
export type LoadResult = BulkResult | PingpongResult;

/** The result type for a given mode. */
export type LoadResultFor<M extends LoadOptions["mode"]> = Extract<
  LoadResult,
  { mode: M }
>;

/** The line a hold mode prints once every connection is in its state. */
export interface IdleReady {
  /** Always true. */
  ready: true;
  /** Connections asked for. */
  conns: number;
  /** Connections that opened and got into the state. */
  connected: number;
  /** Connections that failed to open or to get into the state. */
  errors: number;
  /** Seconds it took to open them all and bring them into the state. */
  connectSeconds: number;
  /** Bytes each connection sent to get into the state, on average. */
  bytesSentPerConn: number;
}

/** What a hold mode reports at the end. */
export interface IdleResult extends CommonResult {
  /** The mode. */
  mode: HoldMode;
  /** Connections that, after the wait, got every reply owed and one more verified exchange, and closed cleanly. */
  secondExchangeOk: number;
}

/**
 * The state {@linkcode openIdle} holds connections in: `idle` after one
 * 16-byte exchange; `bulk-idle` after one exchange of 256 KiB; `no-read`
 * stuck, after writing until the server stopped reading, never reading;
 * `mid-stream` after streaming 256 KiB + 1 byte (with the `iota` text, half
 * a character) while reading the reply, without closing.
 */
export type HoldMode = "idle" | "bulk-idle" | "no-read" | "mid-stream";

/** The hold modes, in the order reports list them. */
export const HOLD_MODES: readonly HoldMode[] = [
  "idle",
  "bulk-idle",
  "mid-stream",
  "no-read",
];

/**
 * What hold-mode connections send: `ascii`, printable ASCII with both cases;
 * `iota`, U+0390 repeated, which `--unicode` turns from 2 bytes into 6
 * (U+0399 U+0308 U+0301), the most any character grows.
 */
export type HoldText = "ascii" | "iota";

/** Connections held in a state by {@linkcode openIdle}. */
export interface IdleHandle extends AsyncDisposable {
  /** What the load generator reported once all connections were in their state. */
  readonly ready: IdleReady;
  /** Closes the load generator's stdin, which makes it finish and check every connection and close them; resolves with its report. */
  finish(): Promise<IdleResult>;
}

/**
 * Builds the Go load generator into dir and returns the binary path. Throws a clear Error if `go` is missing.
 *
 * @param dir The folder to put the binary in.
 * @returns The binary's path.
 */
export async function buildLoadgen(dir: string): Promise<string> {
  const binary = `${dir}/loadgen`;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("go", {
      args: ["build", "-o", binary, "."],
      cwd: SOURCE_DIR,
      // The program uses only the standard library; the build must never
      // try the network.
      env: { GOPROXY: "off", GOTOOLCHAIN: "local" },
      stdin: "null",
    }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        'Cannot build the Go load generator: "go" is not on PATH (apt-get install golang-go)',
        { cause: err },
      );
    }
    throw err;
  }
  if (!output.success) {
    throw new Error(
      `Cannot build the Go load generator: "go build" exited with ${output.code}:\n${
        decoder.decode(output.stderr)
      }`,
    );
  }
  return binary;
}

/**
 * Runs one bulk or pingpong load and returns the parsed result.
 *
 * A run with errors resolves too, with `errors` above 0 and a non-zero
 * `exitCode`; it rejects only if the load generator printed no result.
 *
 * @param binary The path {@linkcode buildLoadgen} returned.
 * @param options What load to run.
 * @returns The load generator's report.
 */
export async function runGoLoad<M extends LoadOptions["mode"]>(
  binary: string,
  options: LoadOptions & { mode: M },
): Promise<LoadResultFor<M>> {
  const { duration = 5, warmup = 1 } = options;
  const args = [
    ...commonArgs(options),
    "-mode",
    options.mode,
    "-duration",
    String(duration),
    "-warmup",
    String(warmup),
  ];
  if (options.size !== undefined) args.push("-size", String(options.size));
  if (options.pause) args.push("-pause", String(options.pause));
  if (options.onWindow) args.push("-marks");
  const [cmd, ...cmdArgs] = command(binary, args, options.cpu);
  const kill = new AbortController();
  const timer = setTimeout(
    () => kill.abort(),
    (10 + warmup + duration + (options.mode === "bulk" ? 40 : 10) +
      KILL_MARGIN_S) * 1000,
  );
  try {
    const child = new Deno.Command(cmd!, {
      args: cmdArgs,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: kill.signal,
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const stdout = await readLines(child.stdout, (line) => {
      const edge = parseJson(line)?.["window"];
      if (edge === "start" || edge === "end") options.onWindow?.(edge);
    });
    const status = await child.status;
    const result = parseResult(stdout, await stderr, options.mode);
    return { ...result, exitCode: status.code } as LoadResultFor<M>;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a stream to its end, handing each line to `onLine` as it comes. */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<string> {
  let text = "";
  let seen = 0;
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let nl; (nl = text.indexOf("\n", seen)) >= 0; seen = nl + 1) {
      onLine(text.slice(seen, nl));
    }
  }
  return text;
}

/** Options for {@linkcode openIdle}. */
export interface HoldOptions {
  /** The server, as `host:port`. */
  addr: string;
  /** Number of connections. */
  conns: number;
  /** Local source IPs, used round-robin, to get past per-address limits. */
  sources?: string[];
  /** The core to pin the load generator to with `taskset`; unpinned if absent. */
  cpu?: number;
  /**
   * The state to hold the connections in.
   *
   * @default {"idle"}
   */
  mode?: HoldMode;
  /**
   * What the connections send.
   *
   * @default {"ascii"}
   */
  text?: HoldText;
  /**
   * Seconds allowed for opening the connections and bringing them into
   * their state, and again for finishing them.
   *
   * @default {10}
   */
  timeout?: number;
}

/**
 * Opens connections and brings each into a state (by default, idle after
 * one exchange); resolves once all are there; returns an object with the
 * ready info and `finish(): Promise<IdleResult>` that closes stdin and
 * awaits the final JSON.
 *
 * Every connection has been verified by then (in `no-read`, it has written
 * until the server stopped reading), so the server is known to hold them
 * all. Dispose of the handle if `finish` is not called.
 *
 * @param binary The path {@linkcode buildLoadgen} returned.
 * @param options The server, how many connections, the state, and pinning.
 * @returns The ready report and a way to finish.
 */
export async function openIdle(
  binary: string,
  options: HoldOptions,
): Promise<IdleHandle> {
  const { mode = "idle", text: payload = "ascii" } = options;
  const args = [...commonArgs(options), "-mode", mode, "-text", payload];
  if (options.timeout !== undefined) {
    args.push("-connect-timeout", String(options.timeout));
  }
  const [cmd, ...cmdArgs] = command(binary, args, options.cpu);
  const child = new Deno.Command(cmd!, {
    args: cmdArgs,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  let finished = false;

  // Waits for the process and its output, whatever state it is in.
  const end = async (): Promise<{ code: number; stderr: string }> => {
    finished = true;
    try {
      await child.stdin.close();
    } catch {
      // It exited already, or the pipe is broken: either way it is closed.
    }
    for (;;) {
      const { done, value } = await stdout.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    return { code: status.code, stderr: await stderr };
  };

  let ready: IdleReady;
  try {
    while (!text.includes("\n")) {
      const { done, value } = await stdout.read();
      if (done) break;
      text += value;
    }
    const nl = text.indexOf("\n");
    const line = nl >= 0 ? text.slice(0, nl) : "";
    text = text.slice(nl + 1);
    const parsed = parseJson(line);
    if (parsed?.["ready"] !== true) {
      throw new Error(`The Go load generator never reported ready: ${line}`);
    }
    ready = parsed as unknown as IdleReady;
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    const { stderr } = await end();
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\n${stderr}`,
      { cause: err },
    );
  }

  return {
    ready,
    async finish(): Promise<IdleResult> {
      if (finished) {
        throw new Error("The idle connections were finished already");
      }
      const { code, stderr } = await end();
      const result = parseResult(text, stderr, mode);
      return { ...result, exitCode: code } as unknown as IdleResult;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      if (finished) return;
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await end();
    },
  };
}

function commonArgs(
  options: { addr: string; conns: number; sources?: string[] },
): string[] {
  const args = ["-addr", options.addr, "-conns", String(options.conns)];
  if (options.sources?.length) args.push("-sources", options.sources.join(","));
  return args;
}

function command(binary: string, args: string[], cpu?: number): string[] {
  return cpu === undefined
    ? [binary, ...args]
    : ["taskset", "-c", String(cpu), binary, ...args];
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

// The result is the last line on stdout; anything else there (the idle
// mode's ready line) comes before it.
function parseResult(
  stdout: string,
  stderr: string,
  mode: string,
): Record<string, unknown> {
  const last = stdout.trim().split("\n").at(-1) ?? "";
  const parsed = parseJson(last);
  if (parsed?.["mode"] !== mode || typeof parsed["errors"] !== "number") {
    throw new Error(
      `The Go load generator printed no ${mode} result: ${
        JSON.stringify(last)
      }\n${stderr}`,
    );
  }
  return parsed;
}
