import { getLogger } from "@logtape/logtape";
import type { AdminServer } from "./admin_server.ts";
import { flushLogs } from "./logging.ts";
import type { ServerSettings } from "./serve.ts";
import { serveSupervisorAdmin } from "./supervisor_admin.ts";
import { RestartBackoff } from "./supervisor_backoff.ts";
import { workerCommand } from "./worker_command.ts";
import { forEachLine, tagWorkerLine } from "./worker_log.ts";
import { parseWorkerReport } from "./worker_report.ts";

const log = getLogger(["upcase", "supervisor"]);
const encoder = new TextEncoder();
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** Options for {@linkcode runSupervisor}. */
export interface SupervisorOptions {
  /** How many workers to run. */
  workers: number;
  /** The data address all workers listen on; the port must not be 0. */
  addr: Deno.NetAddr;
  /** The arguments each worker gets, after the supervisor's own. */
  workerArgs: string[];
  /** Files the workers must read (the TLS pair), for their permissions. */
  readPaths?: string[];
  /** Forward SIGHUP, so that every worker reloads its TLS files. */
  forwardHup?: boolean;
  /** The supervisor's own admin endpoint, with totals; off if absent. */
  admin?: { hostname: string; port: number };
  /** The settings the workers run with, for the admin endpoint. */
  settings: ServerSettings;
  /** The drain timeout in seconds, for the log. */
  drainSeconds: number;
}

interface Worker {
  id: number;
  child: Deno.ChildProcess;
  startedAt: number;
  adminPort?: number;
}

// Whole lines only, written synchronously, so that lines from different
// workers never mix.
function writeLine(line: string): void {
  let bytes = encoder.encode(`${line}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
}

function describeExit(status: Deno.CommandStatus): string {
  return status.signal !== null
    ? `signal ${status.signal}`
    : `exit code ${status.code}`;
}

/**
 * Runs `workers` copies of this program on one port, each its own process
 * with its own file descriptor limit; the kernel (SO_REUSEPORT) spreads new
 * connections over them. It restarts a worker that exits by itself, after a
 * delay that doubles from 100 ms to 10 s with each crash in a row; passes
 * SIGINT and SIGTERM on to every worker and waits while they drain; tags
 * and merges their logs into its standard error; and serves an admin
 * endpoint with totals across the workers.
 *
 * @param options The workers, the shared address, and the admin endpoint.
 * @returns the exit code: 0 after a signal once every worker has exited
 * cleanly, 1 if a worker could not start or did not exit cleanly.
 */
export async function runSupervisor(
  options: SupervisorOptions,
): Promise<number> {
  const { workers: count, addr, readPaths = [] } = options;
  const running = new Map<number, Worker>();
  const backoffs = new Map<number, RestartBackoff>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopping = false;
  let starting = true;
  let failed = false;
  const allExited = Promise.withResolvers<void>();
  const workerArgs = [
    ...options.workerArgs,
    // Later flags win, and these must: one process each, on the shared
    // port, with a private admin endpoint for the totals.
    "--workers",
    "1",
    "--host",
    addr.hostname,
    "--port",
    String(addr.port),
    "--admin",
    "127.0.0.1:0",
  ];

  function checkAllExited(): void {
    if (stopping && running.size === 0 && timers.size === 0) {
      allExited.resolve();
    }
  }

  function exited(worker: Worker, status: Deno.CommandStatus): void {
    running.delete(worker.id);
    const how = describeExit(status);
    if (stopping || starting) {
      if (!status.success) failed = true;
      const fields = { worker: worker.id, pid: worker.child.pid, how };
      if (status.success) {
        log.info("worker {worker} (pid {pid}) exited", fields);
      } else log.error("worker {worker} (pid {pid}) exited with {how}", fields);
      checkAllExited();
      return;
    }
    const backoff = backoffs.get(worker.id) ?? new RestartBackoff();
    backoffs.set(worker.id, backoff);
    const delay = backoff.next(performance.now() - worker.startedAt);
    log.error(
      "worker {worker} (pid {pid}) exited with {how}; restarting it in {delay} ms",
      { worker: worker.id, pid: worker.child.pid, how, delay },
    );
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopping) return checkAllExited();
      void start(worker.id).then((ok) => {
        if (ok) log.info("worker {worker} restarted", { worker: worker.id });
      });
    }, delay);
    timers.add(timer);
  }

  // Resolves true once the worker serves, false if it exits first.
  function start(id: number): Promise<boolean> {
    const { command, args } = workerCommand(id, {
      args: workerArgs,
      readPaths,
    });
    const child = new Deno.Command(command, {
      args,
      // Never written: the worker reads it to notice that the supervisor
      // is gone, even after a SIGKILL, and then drains.
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // Its own process group, so that a Ctrl-C in a terminal reaches only
      // the supervisor, which passes it on once.
      detached: true,
    }).spawn();
    const worker: Worker = { id, child, startedAt: performance.now() };
    running.set(id, worker);
    log.info("started worker {worker} (pid {pid})", {
      worker: id,
      pid: child.pid,
    });
    const ready = Promise.withResolvers<boolean>();
    const stderrDone = forEachLine(
      child.stderr,
      (line) => writeLine(tagWorkerLine(line, id)),
    );
    const stdoutDone = forEachLine(child.stdout, (line) => {
      const port = parseWorkerReport(line);
      if (port === undefined) return writeLine(tagWorkerLine(line, id));
      worker.adminPort = port;
      ready.resolve(true);
    });
    void child.status.then(async (status) => {
      await Promise.all([stderrDone, stdoutDone]).catch(() => {});
      await child.stdin.close().catch(() => {});
      ready.resolve(false);
      exited(worker, status);
    });
    return ready.promise;
  }

  function forward(signal: Deno.Signal): void {
    for (const { child } of running.values()) {
      try {
        child.kill(signal);
      } catch {
        // It exited a moment ago; its exit is being handled.
      }
    }
  }

  let received = 0;
  function stop(signal: Deno.Signal): void {
    if (received++ > 0) {
      log.warning("received {signal} again; killing the workers and exiting", {
        signal,
      });
      forward("SIGKILL");
      const code = 128 +
        SIGNAL_NUMBERS[signal as keyof typeof SIGNAL_NUMBERS];
      void flushLogs(500).then(() => Deno.exit(code));
      return;
    }
    stopping = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    log.info(
      "received {signal}; passing it to {workers} workers, which drain for up to {seconds} s",
      { signal, workers: running.size, seconds: options.drainSeconds },
    );
    forward(signal);
    checkAllExited();
  }
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", () => stop("SIGINT")],
    ["SIGTERM", () => stop("SIGTERM")],
  ];
  if (options.forwardHup) listeners.push(["SIGHUP", () => forward("SIGHUP")]);
  for (const [signal, handler] of listeners) {
    Deno.addSignalListener(signal, handler);
  }

  let admin: AdminServer | undefined;
  try {
    const ids = Array.from({ length: count }, (_, i) => i + 1);
    const ok = await Promise.all(ids.map(start));
    starting = false;
    if (ok.includes(false) || stopping) {
      if (!stopping) {
        log.error("a worker failed to start; stopping the others");
        stopping = true;
        failed = true;
        forward("SIGTERM");
      }
      checkAllExited();
      await allExited.promise;
      return failed ? 1 : 0;
    }
    log.info(
      "listening on {address} with {workers} workers",
      { address: `${addr.hostname}:${addr.port}`, workers: count },
    );
    if (options.admin) {
      admin = serveSupervisorAdmin({
        ...options.admin,
        addr,
        settings: options.settings,
        workerPorts: () =>
          [...running.values()].flatMap((w) =>
            w.adminPort === undefined ? [] : [w.adminPort]
          ),
        draining: () => stopping,
        finished: allExited.promise,
      });
    }
    await allExited.promise;
    log.info("all workers have exited");
    return failed ? 1 : 0;
  } finally {
    await admin?.shutdown();
    for (const [signal, handler] of listeners) {
      Deno.removeSignalListener(signal, handler);
    }
  }
}
