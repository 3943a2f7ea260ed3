/**
 * Shared pieces for the tests: clients that verify what comes back, a
 * server started as a child process, and skips for missing tools.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { writeInChunks } from "../bench/loadgen.ts";
import type { StatsSnapshot } from "../src/server/stats.ts";
import { TRANSPORT_ARGS } from "./_transport.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";

const encoder = new TextEncoder();
// One decoder for every readUntil call: a character split between two reads
// still decodes whole.
const lineDecoder = new TextDecoder();

/** The reference for ASCII mode: Python's `bytes.upper()`. */
export function asciiUpper(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b));
}

/** Random bytes of any value, from a seeded generator so failures repeat. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reads a stream to its end into one array. */
export async function readAll(
  readable: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(readable).arrayBuffer());
}

/** Reads exactly `length` bytes, or throws at an early end. */
export async function readExactly(
  conn: Deno.Conn,
  length: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error(`EOF after ${got} of ${length} bytes`);
    got += n;
  }
  return buf;
}

/**
 * Reads a child's output from `reader` until a line matches, and returns
 * that line. `seen.text` keeps everything read so far, so that the next
 * call finds lines that came in the same chunk.
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pattern: RegExp,
  seen: { text: string },
): Promise<string> {
  for (;;) {
    const match = seen.text.split("\n").find((l) => pattern.test(l));
    if (match !== undefined) return match;
    const { value, done } = await reader.read();
    if (done) throw new Error(`output ended before ${pattern}:\n${seen.text}`);
    seen.text += lineDecoder.decode(value, { stream: true });
  }
}

/** Runs a client with `stdin` as its input; returns its exit code and output. */
export async function runClient(
  cmd: string,
  args: string[],
  stdin: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Reading and writing at once: the client stops reading its input when
  // nobody reads its output.
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(stdin);
  await writer.close();
  const out = await output;
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/**
 * Connects, sends `data` in chunks of `chunkSize` while reading, half-closes,
 * and returns everything the server sent until it closed.
 */
export async function exchange(
  port: number,
  data: Uint8Array,
  options: { hostname?: string; chunkSize?: number } = {},
): Promise<Uint8Array> {
  const { hostname = "127.0.0.1", chunkSize = 64 * 1024 } = options;
  const conn = await Deno.connect({ hostname, port });
  try {
    const received = readAll(conn.readable);
    await writeInChunks(conn, data, chunkSize);
    await conn.closeWrite();
    return await received;
  } finally {
    try {
      conn.close();
    } catch {
      // The readable closed it when the server finished.
    }
  }
}

/**
 * Asserts the one definition of the accepted counter: every connection the
 * listener handed over is open, waiting for a slot (with `--workers`),
 * closed, refused or rejected.
 */
export function assertAccountedFor(stats: StatsSnapshot): void {
  const sum = (counts: Record<string, number>) =>
    Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = {
    open: stats.open,
    waiting: stats.waiting,
    closed: sum(stats.closed),
    refused: stats.refused,
    rejected: sum(stats.proxyRejected),
  };
  assertEquals(
    stats.accepted,
    sum(parts),
    `accepted should be open + waiting + closed + refused + rejected: ${
      JSON.stringify(parts)
    }`,
  );
}

/** Encodes text as UTF-8. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** True when `name` is an executable on PATH (or an absolute path that exists). */
export function hasTool(name: string): boolean {
  if (name.startsWith("/")) {
    try {
      return Deno.statSync(name).isFile;
    } catch {
      return false;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/**
 * Test options for a test that needs an outside tool. Where the tool is
 * missing the test is skipped, and its name says why; with
 * UPCASE_REQUIRE_TOOLS=1 (as CI sets) it runs anyway and fails.
 */
export function needs(
  tools: string[],
  name: string,
): { name: string; ignore: boolean } {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return { name, ignore: false };
  if (Deno.env.get("UPCASE_REQUIRE_TOOLS") === "1") {
    return {
      name: `${name} (requires ${missing.join(", ")}, missing)`,
      ignore: false,
    };
  }
  return {
    name: `${name} (skipped: ${
      missing.join(", ")
    } not installed; apt-get install the tools .ci/run lists)`,
    ignore: true,
  };
}

/** The project's root folder. */
export const ROOT = new URL("../", import.meta.url).pathname;

/** The `--allow-env` list of `deno task start`, taken from deno.json. */
export async function startTaskCommand(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  return config.tasks.start as string;
}

/** A server running as a child process, with its log lines. */
export class ServerProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #waiters: {
    match: (line: string) => boolean;
    resolve: (line: string) => void;
  }[] = [];
  #stderrDone: Promise<void>;
  #stdoutDone: Promise<void>;
  port = 0;

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#stderrDone = this.#collect(child.stderr);
    this.#stdoutDone = this.#collect(child.stdout);
  }

  /**
   * Starts `deno run` on main.ts with the given permission flags and
   * arguments, and waits until it logs the port it listens on (or the
   * `ready` line).
   */
  static async start(
    args: string[],
    options: {
      permissions?: string[];
      env?: Record<string, string>;
      command?: string[];
      /**
       * The log line to wait for; the port is read from it when it has one.
       *
       * @default {/listening on /}
       */
      ready?: RegExp;
    } = {},
  ): Promise<ServerProcess> {
    const {
      permissions = ["--allow-net"],
      env = {},
      command,
      ready = /listening on /,
    } = options;
    const level = args[args.indexOf("--log-level") + 1];
    if (
      args.includes("--log-level") && (level === "warning" || level === "error")
    ) {
      // The port is read from the "listening on" line, which is info level.
      throw new Error("ServerProcess.start needs --log-level info or lower");
    }
    const [cmd, ...cmdArgs] = command ??
      [Deno.execPath(), "run", V8_FLAGS, ...permissions, `${ROOT}main.ts`];
    const child = new Deno.Command(cmd!, {
      args: [
        ...cmdArgs,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        // The test run's transport, unless the test chose one.
        ...(args.includes("--transport") ? [] : TRANSPORT_ARGS),
        ...args,
      ],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const server = new ServerProcess(child);
    const line = await server.waitForLine(ready);
    // In text and JSON lines alike, and also when a note such as " (TLS)"
    // follows the address.
    server.port = Number(
      /listening on (?:\[[^\]]*\]|[^\s:"]+):(\d+)/.exec(line)?.[1],
    );
    return server;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.match(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    }
    if (buffered) this.lines.push(buffered);
  }

  /**
   * Resolves with the first log line (past or future) that matches. Rejects
   * if the process ends first, or after `timeoutMs`, so that a server that
   * lost the behaviour fails the test instead of hanging it. With `after`,
   * only lines from that index of `lines` on count.
   */
  waitForLine(
    pattern: RegExp,
    timeoutMs = 60_000,
    after = 0,
  ): Promise<string> {
    const seen = this.lines.slice(after).find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    const fail = (why: string) =>
      reject(
        new Error(
          `${why} before a line matched ${pattern}:\n${this.lines.join("\n")}`,
        ),
      );
    const timer = setTimeout(() => fail(`${timeoutMs} ms passed`), timeoutMs);
    this.#waiters.push({ match: (l) => pattern.test(l), resolve });
    // If the process ends first, the line will never come.
    this.child.status.then(async () => {
      await this.#stderrDone;
      await this.#stdoutDone;
      const found = this.lines.slice(after).find((l) => pattern.test(l));
      if (found !== undefined) resolve(found);
      else fail("The process ended");
    });
    return promise.finally(() => clearTimeout(timer));
  }

  /** Waits for the process to exit and for its output to be read. */
  async exit(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#stderrDone;
    await this.#stdoutDone;
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.exit();
  }
}

/**
 * Runs main.ts to completion and returns its exit code and output; a run
 * still going after `timeoutMs` is killed and fails the test.
 */
export async function runCli(
  args: string[],
  options: {
    permissions?: string[];
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { permissions = ["--allow-net"], env = {}, timeoutMs = 15_000 } =
    options;
  // A server that wrongly starts instead of exiting is killed, and the test
  // fails, rather than hanging.
  const killer = new AbortController();
  const timer = setTimeout(() => killer.abort(), timeoutMs);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, `${ROOT}main.ts`, ...args],
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      signal: killer.signal,
    }).output();
    const decoder = new TextDecoder();
    const result = {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
    assert(
      !killer.signal.aborted,
      `main.ts ${
        args.join(" ")
      } was still running after ${timeoutMs} ms:\n${result.stderr}`,
    );
    return result;
  } finally {
    clearTimeout(timer);
  }
}
