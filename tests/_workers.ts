/**
 * Shared pieces for the `--workers` tests: the supervisor as a child
 * process, optionally the leader of its own process group, with its
 * workers' pids, and a client that streams through a stop.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";
import {
  asciiUpper,
  randomBytes,
  readExactly,
  ROOT,
  ServerProcess,
} from "./_helpers.ts";

/** A supervisor started by {@linkcode startSupervisor}. */
export interface Supervised extends AsyncDisposable {
  /** The supervisor's process and its merged log. */
  readonly server: ServerProcess;
  /** Its process group: its own pid when started with `group`. */
  readonly pgid: number;
  /** The pid of every worker started so far, by worker id; the latest last. */
  workerPids(): Map<number, number[]>;
}

/** Options for {@linkcode startSupervisor}. */
export interface SupervisorStart {
  /** Arguments after `--workers N`. */
  args?: string[];
  /**
   * Start it with `setsid`, as the leader of a process group of its own
   * that its workers join, as systemd or a terminal would.
   */
  group?: boolean;
  /** The line to wait for; by default, all workers serve. */
  ready?: RegExp;
}

const STARTED = /started worker (\d+) \(pid (\d+)\)/;

// The running children of `parent` that are upcase workers, from /proc.
function workersOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== parent) continue;
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmdline.includes("--upcase-worker=")) pids.push(Number(entry.name));
    } catch {
      // It exited while we looked.
    }
  }
  return pids;
}

/**
 * Starts main.ts with `--workers` and waits until every worker serves (or
 * for the `ready` line). Disposing of it SIGKILLs the workers and the
 * supervisor, so that a failed test leaves no worker draining behind it.
 */
export async function startSupervisor(
  workers: number,
  options: SupervisorStart = {},
): Promise<Supervised> {
  const { args = [], group = false, ready } = options;
  const server = await ServerProcess.start(
    ["--workers", String(workers), ...args],
    {
      command: [
        ...(group ? ["setsid"] : []),
        Deno.execPath(),
        "run",
        V8_FLAGS,
        "--allow-net",
        "--allow-run",
        "--allow-env",
        "--allow-read",
        `${ROOT}main.ts`,
      ],
      ready: ready ?? /listening on \S+ with \d+ workers/,
    },
  );
  if (ready === undefined) {
    const line = server.lines.find((l) => / with \d+ workers/.test(l))!;
    server.port = Number(/:(\d+) with/.exec(line)?.[1]);
  }
  const workerPids = () => {
    const pids = new Map<number, number[]>();
    for (const line of server.lines) {
      const m = STARTED.exec(line);
      if (!m) continue;
      const id = Number(m[1]);
      pids.set(id, [...(pids.get(id) ?? []), Number(m[2])]);
    }
    return pids;
  };
  return {
    server,
    // setsid execs in place, so the child's pid leads the new group.
    pgid: group ? server.child.pid : NaN,
    workerPids,
    async [Symbol.asyncDispose]() {
      // Only the supervisor's children that are workers now: a worker that
      // exited earlier may have left its pid to an unrelated process.
      for (const pid of workersOf(server.child.pid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await server[Symbol.asyncDispose]();
    },
  };
}

/** The supervisor's admin port, from its log. */
export async function supervisorAdminPort(
  server: ServerProcess,
): Promise<number> {
  const line = await server.waitForLine(/admin listening on .* \(totals/);
  return Number(/:(\d+) \(totals/.exec(line)?.[1]);
}

/**
 * A client that sends 900-byte chunks and reads each echo back before the
 * next, until told to finish; then it half-closes and reads to the end.
 * Every byte that comes back is checked.
 */
export class StreamingClient {
  readonly #conn: Deno.Conn;
  readonly #done: Promise<number>;
  #finish = false;
  #rounds = 0;
  #waiters: { rounds: number; resolve: () => void }[] = [];

  /** Connects and starts streaming. */
  static async connect(port: number): Promise<StreamingClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new StreamingClient(conn);
  }

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#done = this.#run();
    // Awaited by the test through done; a cut shows there.
    this.#done.catch(() => {});
  }

  /** Round trips completed so far. */
  get rounds(): number {
    return this.#rounds;
  }

  /**
   * Resolves once `more` further round trips have completed; rejects if the
   * stream ends first.
   */
  after(more: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ rounds: this.#rounds + more, resolve });
    return Promise.race([
      promise,
      this.#done.then((bytes) => {
        throw new Error(`The stream ended after ${bytes} bytes`);
      }),
    ]);
  }

  /**
   * Stops after the current round trip, half-closes, and reads to the
   * server's end.
   *
   * @returns the bytes streamed, each echoed exactly.
   */
  finish(): Promise<number> {
    this.#finish = true;
    return this.#done;
  }

  /** Settles when the stream ends: the bytes streamed, or why it broke. */
  get done(): Promise<number> {
    return this.#done;
  }

  async #run(): Promise<number> {
    const conn = this.#conn;
    let bytes = 0;
    try {
      // Bounded, so that a server that never stops cannot hang the test.
      const deadline = performance.now() + 60_000;
      while (!this.#finish && performance.now() < deadline) {
        const chunk = randomBytes(900, ++this.#rounds);
        for (let sent = 0; sent < chunk.length;) {
          sent += await conn.write(chunk.subarray(sent));
        }
        assertEquals(await readExactly(conn, chunk.length), asciiUpper(chunk));
        bytes += chunk.length;
        this.#waiters = this.#waiters.filter((w) =>
          w.rounds > this.#rounds || void w.resolve()
        );
      }
      await conn.closeWrite();
      assertEquals(await conn.read(new Uint8Array(1)), null);
      return bytes;
    } finally {
      conn.close();
    }
  }
}
