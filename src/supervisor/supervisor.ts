import { getLogger } from "@logtape/logtape";
import type { AdminServer } from "../admin/server.ts";
import { writeLogLine } from "../logging/logging.ts";
import type { ServerSettings } from "../server/serve.ts";
import { serveSupervisorAdmin } from "./admin.ts";
import { RestartBackoff } from "./backoff.ts";
import { Heartbeat, type HeartbeatChange } from "./heartbeat.ts";
import { LimitBroker } from "./limits.ts";
import { WorkerTotals } from "./totals.ts";
import { forEachLine, tagWorkerLine } from "./worker_log.ts";
import {
  encodeSupervisorMessage,
  parseWorkerMessage,
  type SupervisorMessage,
} from "./worker_protocol.ts";

const log = getLogger(["upcase", "supervisor"]);
const encoder = new TextEncoder();

/**
 * A worker that exits this many times in a row before it serves has a
 * problem that restarting does not fix (the port taken, a bad
 * certificate), and the supervisor gives up; with the restart delays in
 * between, that takes about two seconds.
 */
export const MAX_START_FAILURES = 5;

// How long a worker that exited cleanly, unasked, waits to be restarted: the
// stop signal that made it drain may still be on its way to the supervisor.
const CLEAN_EXIT_GRACE_MS = 1000;

/** Milliseconds between the supervisor's pings to each worker. */
export const HEARTBEAT_MS = 1000;
/**
 * Pings in a row that a worker leaves unanswered before the server reports
 * itself not ready: a stopped or stuck worker still gets its share of new
 * clients from the kernel, and they wait.
 */
export const SILENT_BEATS = 3;
/**
 * Pings in a row that a worker leaves unanswered before the supervisor
 * kills it and starts a new one. Long enough for a long garbage collection
 * or a burst of work; short enough that the clients it strands are few.
 */
export const HUNG_BEATS = 10;

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** How many workers to run. */
  workers: number;
  /** The data address all workers listen on; the port must not be 0. */
  addr: Deno.NetAddr;
  /** The arguments each worker gets, after the supervisor's own. */
  workerArgs: string[];
  /**
   * The command line that starts worker `id` with `args`: the command
   * knows how this program runs (under `deno run` or compiled) and which
   * permissions a worker needs.
   */
  workerCommand: (
    id: number,
    args: string[],
  ) => { command: string; args: string[] };
  /** The supervisor's own admin endpoint, with totals; off if absent. */
  admin?: { hostname: string; port: number };
  /** The settings the workers run with, for the admin endpoint. */
  settings: ServerSettings;
}

interface Worker {
  id: number;
  child: Deno.ChildProcess;
  startedAt: number;
  ready: boolean;
  restarted: boolean;
  input: WritableStreamDefaultWriter<Uint8Array>;
  // Messages for the worker, written together at the end of this turn.
  queued: string;
}

// Whole lines, so that lines from different workers never mix, through the
// log's bounded queue: a stalled reader of standard error costs lines,
// counted and reported, never the supervisor's attention, which the
// connection limits, the heartbeat and the admin endpoint need.
function forwardLine(line: string, id: number): void {
  writeLogLine(`${tagWorkerLine(line, id)}\n`);
}

type ExitFields = { worker: number; pid: number; how: string; before: string };

function describeExit(status: Deno.CommandStatus): string {
  return status.signal !== null
    ? `signal ${status.signal}`
    : `exit code ${status.code}`;
}

/**
 * Runs `workers` copies of this program on one port, each its own process
 * with its own file descriptor limit; the kernel (SO_REUSEPORT) spreads new
 * connections over them. It restarts a worker that exits by itself, also
 * one that never got to serve, after a delay that doubles from 100 ms to
 * 10 s with each crash in a row, and gives up after
 * {@linkcode MAX_START_FAILURES} start-up failures in a row. It keeps
 * `--max-connections` and `--max-connections-per-ip` for the whole server
 * (see {@linkcode LimitBroker}); asks every worker to drain when told to
 * stop, and to reload its TLS files when told to reload, once each, however
 * many processes a signal reached; pings every worker each second, reports
 * the server not ready while one does not answer, and replaces one that
 * stays silent for {@linkcode HUNG_BEATS} pings; tags and merges their logs
 * into its standard error without ever waiting for its reader; and serves
 * an admin endpoint with totals across the workers.
 *
 * The caller decides when to stop, kill or reload, and the process's exit:
 * the command turns signals into these calls (src/cli/supervise.ts).
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #workerArgs: string[];
  readonly #running = new Map<number, Worker>();
  readonly #backoffs = new Map<number, RestartBackoff>();
  readonly #startFailures = new Map<number, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  // Workers that exited cleanly, unasked, and wait to be restarted.
  readonly #cleanExits = new Map<number, ExitFields>();
  readonly #broker: LimitBroker | undefined;
  readonly #totals = new WorkerTotals();
  readonly #heartbeat = new Heartbeat({
    ping: (id, seq, connections) =>
      this.#send(id, { kind: "ping", seq, connections }),
    onChange: (id, change) => this.#onHeartbeat(id, change),
    intervalMs: HEARTBEAT_MS,
    silentAfter: SILENT_BEATS,
    hungAfter: HUNG_BEATS,
  });
  readonly #allUp = Promise.withResolvers<void>();
  readonly #allExited = Promise.withResolvers<void>();
  #up = false;
  #stopping = false;
  #stopSignal: Deno.Signal | undefined;
  #failed = false;

  /**
   * Prepares the supervisor; {@linkcode Supervisor.run} starts the workers.
   *
   * @param options The workers, the shared address, and the admin endpoint.
   */
  constructor(options: SupervisorOptions) {
    this.#options = options;
    const { addr, settings } = options;
    this.#workerArgs = [
      ...options.workerArgs,
      // Later flags win, and these must: one process each, on the shared
      // port. A worker serves no admin endpoint, whatever it is given: the
      // supervisor's reports for it, from its answers to pings.
      "--workers",
      "1",
      "--host",
      addr.hostname,
      "--port",
      String(addr.port),
    ];
    if (settings.maxConnections > 0 || settings.maxConnectionsPerIp > 0) {
      this.#broker = new LimitBroker({
        maxConnections: settings.maxConnections,
        maxConnectionsPerIp: settings.maxConnectionsPerIp,
        workers: options.workers,
        send: (id, message) => this.#send(id, message),
      });
    }
  }

  /** How many workers run now. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Starts the workers and keeps them running until a stop, or until one
   * keeps failing to start.
   *
   * @returns the exit code: 0 after a stop once every worker has exited
   * cleanly, 1 if a worker could not start or did not exit cleanly.
   */
  async run(): Promise<number> {
    let admin: AdminServer | undefined;
    this.#heartbeat.start();
    try {
      // A stop that came before the run leaves nothing to start.
      for (let id = 1; id <= this.#options.workers; id++) {
        if (!this.#stopping) this.#start(id);
      }
      const up = await Promise.race([
        this.#allUp.promise.then(() => true),
        this.#allExited.promise.then(() => false),
      ]);
      if (up) admin = this.#serveAdmin();
      await this.#allExited.promise;
      log.info("all workers have exited");
      return this.#failed ? 1 : 0;
    } finally {
      this.#heartbeat[Symbol.dispose]();
      this.#broker?.[Symbol.dispose]();
      await admin?.shutdown();
    }
  }

  #start(id: number, restarted = false): void {
    const { command, args } = this.#options.workerCommand(
      id,
      this.#workerArgs,
    );
    // In the supervisor's own process group, so that a stop sent to the
    // group (a Ctrl-C, `kill -TERM -PGID`) or a SIGKILL to it reaches them
    // all; a stop each worker gets twice, from outside and through the
    // supervisor, still drains it once (see SupervisorLink).
    const child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const worker: Worker = {
      id,
      child,
      startedAt: performance.now(),
      ready: false,
      restarted,
      input: child.stdin.getWriter(),
      queued: "",
    };
    this.#running.set(id, worker);
    this.#broker?.workerStarted(id);
    log.info("started worker {worker} (pid {pid})", {
      worker: id,
      pid: child.pid,
    });
    const stderrDone = forEachLine(
      child.stderr,
      (line) => forwardLine(line, id),
    );
    const stdoutDone = forEachLine(
      child.stdout,
      (line) => this.#fromWorker(worker, line),
    );
    void child.status.then(async (status) => {
      await Promise.all([stderrDone, stdoutDone]).catch(() => {});
      await worker.input.close().catch(() => {});
      this.#exited(worker, status);
    });
  }

  #fromWorker(worker: Worker, line: string): void {
    const message = parseWorkerMessage(line);
    if (message === undefined) return forwardLine(line, worker.id);
    if (message.kind === "pong") {
      this.#totals.report(worker.id, message.stats);
      return this.#heartbeat.answered(worker.id, message.seq);
    }
    if (message.kind !== "ready") {
      return this.#broker?.receive(worker.id, message);
    }
    worker.ready = true;
    this.#heartbeat.add(worker.id);
    this.#startFailures.delete(worker.id);
    if (worker.restarted) {
      log.info("worker {worker} restarted", { worker: worker.id });
    }
    const all = [...this.#running.values()];
    if (
      !this.#up && all.length === this.#options.workers &&
      all.every((w) => w.ready)
    ) {
      this.#up = true;
      this.#allUp.resolve();
    }
  }

  #send(id: number, message: SupervisorMessage): void {
    const worker = this.#running.get(id);
    if (worker === undefined) return;
    if (worker.queued === "") {
      queueMicrotask(() => {
        const bytes = encoder.encode(worker.queued);
        worker.queued = "";
        // A worker that has just died; its exit is being handled.
        worker.input.write(bytes).catch(() => {});
      });
    }
    worker.queued += `${encodeSupervisorMessage(message)}\n`;
  }

  #exited(worker: Worker, status: Deno.CommandStatus): void {
    const { id } = worker;
    this.#running.delete(id);
    this.#broker?.workerGone(id);
    this.#heartbeat.remove(id);
    this.#totals.retire(id);
    const fields = {
      worker: id,
      pid: worker.child.pid,
      how: describeExit(status),
    };
    if (this.#stopping) {
      // A worker that had not yet set up its signal handlers when the stop
      // signal reached the whole group dies of it; it served nobody.
      const clean = status.success ||
        (!worker.ready && status.signal === this.#stopSignal);
      if (clean) log.info("worker {worker} (pid {pid}) exited", fields);
      else {
        this.#failed = true;
        log.error("worker {worker} (pid {pid}) exited with {how}", fields);
      }
      return this.#checkAllExited();
    }
    const failures = worker.ready ? 0 : (this.#startFailures.get(id) ?? 0) + 1;
    const before = worker.ready ? "" : " before it was ready";
    if (failures >= MAX_START_FAILURES) {
      log.error(
        "worker {worker} (pid {pid}) exited with {how} before it was ready, {failures} times in a row; giving up and stopping the others",
        { ...fields, failures },
      );
      this.#failed = true;
      return this.#stopAll("failure");
    }
    if (failures > 0) this.#startFailures.set(id, failures);
    this.#restartLater(worker, { ...fields, before }, status.success);
  }

  #restartLater(
    worker: Worker,
    fields: ExitFields,
    clean: boolean,
  ): void {
    let backoff = this.#backoffs.get(worker.id);
    if (backoff === undefined) {
      backoff = new RestartBackoff();
      this.#backoffs.set(worker.id, backoff);
    }
    const next = backoff.next(performance.now() - worker.startedAt);
    const delay = clean ? Math.max(next, CLEAN_EXIT_GRACE_MS) : next;
    const report = (when: string) =>
      log.error(
        `worker {worker} (pid {pid}) exited with {how}{before}; restarting it ${when}`,
        { ...fields, delay },
      );
    // A worker exits 0 only after a drain, that is after a stop signal; one
    // sent to every process (systemd's stop) reaches the supervisor too, a
    // moment later on a loaded machine, and then this was no crash: the
    // restart waits for it before saying so.
    if (clean) this.#cleanExits.set(worker.id, fields);
    else report("in {delay} ms");
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopping) return this.#checkAllExited();
      if (this.#cleanExits.delete(worker.id)) report("after {delay} ms");
      this.#start(worker.id, true);
    }, delay);
    this.#timers.add(timer);
  }

  #stopAll(reason: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const fields of this.#cleanExits.values()) {
      log.info("worker {worker} (pid {pid}) exited", fields);
    }
    this.#cleanExits.clear();
    for (const id of this.#running.keys()) {
      this.#send(id, { kind: "stop", reason });
    }
    this.#checkAllExited();
  }

  #checkAllExited(): void {
    if (this.#stopping && this.#running.size === 0 && this.#timers.size === 0) {
      this.#allExited.resolve();
    }
  }

  /**
   * Asks every worker to drain, once: a worker that gets the same signal
   * itself, sent to the whole process group, drains once all the same.
   *
   * @param signal The signal that asked for the stop: a worker that dies of
   * it before it set up its handlers served nobody, and exited cleanly.
   */
  stop(signal: Deno.Signal): void {
    this.#stopSignal ??= signal;
    this.#stopAll(signal);
  }

  /** Ends the drain at once: kills every worker (SIGKILL). */
  kill(): void {
    this.#stopAll("kill");
    this.#forward("SIGKILL");
  }

  /**
   * Asks every worker to reload its TLS files. Over the pipe rather than
   * as a signal: the workers ignore SIGHUP, so that one sent to the whole
   * process group reloads each of them once.
   */
  reload(): void {
    for (const id of this.#running.keys()) this.#send(id, { kind: "reload" });
  }

  #onHeartbeat(id: number, change: HeartbeatChange): void {
    const worker = this.#running.get(id);
    if (worker === undefined) return;
    const fields = { worker: id, pid: worker.child.pid };
    if (change === "answering") {
      return log.info("worker {worker} (pid {pid}) answers again", fields);
    }
    if (change === "silent") {
      return log.warning(
        "worker {worker} (pid {pid}) has not answered for {beats} heartbeats; the server is not ready until it does",
        { ...fields, beats: SILENT_BEATS },
      );
    }
    log.error(
      "worker {worker} (pid {pid}) has not answered for {beats} heartbeats; killing it (SIGKILL) to replace it",
      { ...fields, beats: HUNG_BEATS },
    );
    try {
      worker.child.kill("SIGKILL");
    } catch {
      // It exited a moment ago; its exit is being handled.
    }
  }

  #forward(signal: Deno.Signal): void {
    for (const { child } of this.#running.values()) {
      try {
        child.kill(signal);
      } catch {
        // It exited a moment ago; its exit is being handled.
      }
    }
  }

  #serveAdmin(): AdminServer | undefined {
    const { addr, workers } = this.#options;
    log.info(
      "listening on {address} with {workers} workers",
      { address: `${addr.hostname}:${addr.port}`, workers },
    );
    if (!this.#options.admin) return undefined;
    const broker = this.#broker;
    return serveSupervisorAdmin({
      ...this.#options.admin,
      addr,
      workers,
      settings: this.#options.settings,
      totals: async (connections) => {
        await this.#heartbeat.collect(connections);
        return this.#totals.total();
      },
      workerStates: () => this.#heartbeat.members,
      draining: () => this.#stopping,
      ...(broker ? { limits: broker } : {}),
      finished: this.#allExited.promise,
    });
  }
}
