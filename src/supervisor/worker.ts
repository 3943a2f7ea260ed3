import { getLogger } from "@logtape/logtape";
import type { StatsSnapshot } from "../server/stats.ts";
import { forEachLine } from "./worker_log.ts";
import { WorkerLimits, type WorkerLimitsOptions } from "./worker_limits.ts";
import {
  encodeWorkerMessage,
  parseSupervisorMessage,
  type WorkerMessage,
} from "./worker_protocol.ts";

const log = getLogger(["upcase", "worker"]);
const encoder = new TextEncoder();

/** Options for {@linkcode SupervisorLink}. */
export interface SupervisorLinkOptions {
  /** The supervisor asks the worker to drain, for `reason` (a signal's name, or `failure`). */
  onStop: (reason: string) => void;
  /** The supervisor is gone, even by SIGKILL: the worker should drain too. */
  onGone: () => void;
  /** The supervisor passes on a SIGHUP: reload the TLS files. */
  onReload?: () => void;
  /** Where the supervisor's messages come from; standard input by default. */
  input?: ReadableStream<Uint8Array>;
  /** Where the worker's messages go; standard output by default. */
  output?: { write(bytes: Uint8Array): Promise<number> };
}

/**
 * A worker's line to its supervisor: it reads the supervisor's messages
 * from standard input, and writes its own to standard output. The
 * supervisor holds the write end of the worker's standard input, so its end
 * means that the supervisor has exited, even by SIGKILL, and the worker
 * should drain rather than serve on unsupervised.
 *
 * A stop comes as a message, not as a signal, so that a signal the worker
 * also gets from outside (systemd's stop, `kill -TERM -PGID`, a Ctrl-C in a
 * terminal, all sent to every process) is not taken for a second one; so
 * does a TLS reload. Once the worker serves, it answers the supervisor's
 * pings with its statistics: a worker whose event loop is stuck does not,
 * and is replaced.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SupervisorLink } from "./worker.ts";
 *
 * const events: string[] = [];
 * const gone = Promise.withResolvers<void>();
 * new SupervisorLink({
 *   onStop: (reason) => void events.push(`stop ${reason}`),
 *   onGone: () => gone.resolve(),
 *   input: new Blob(["stop SIGTERM\n"]).stream(),
 * });
 * await gone.promise;
 * assertEquals(events, ["stop SIGTERM"]);
 * ```
 */
export class SupervisorLink {
  readonly #output: { write(bytes: Uint8Array): Promise<number> };
  #limits: WorkerLimits | undefined;
  #stats: (() => StatsSnapshot) | undefined;
  #queue = "";
  #writing = false;

  /** @param options What to do on a stop, and where messages come and go. */
  constructor(options: SupervisorLinkOptions) {
    const { onStop, onGone, onReload, input = Deno.stdin.readable } = options;
    this.#output = options.output ?? Deno.stdout;
    void forEachLine(input, (line) => {
      const message = parseSupervisorMessage(line);
      if (message?.kind === "ping") {
        this.#pong(message.seq, message.connections);
      } else if (message?.kind === "stop") {
        log.info("the supervisor asks to stop ({reason})", {
          reason: message.reason,
        });
        onStop(message.reason);
      } else if (message?.kind === "reload") {
        log.info("the supervisor asks to reload the TLS certificate and key");
        onReload?.();
      } else if (message) this.#limits?.receive(message);
    }).catch(() => {
      // A broken pipe ends it just the same.
    }).then(() => {
      this.#limits?.close();
      log.warning("the supervisor is gone; draining");
      onGone();
    });
  }

  /**
   * Tells the supervisor that the worker serves, and from then on answers
   * its pings with the server's statistics.
   *
   * @param stats The server's `stats()`.
   */
  ready(stats: () => StatsSnapshot): void {
    this.#stats = stats;
    this.send({ kind: "ready" });
  }

  // Before the worker serves there is nothing to count; the supervisor
  // pings only workers that have said they are ready.
  #pong(seq: number, connections: number): void {
    if (this.#stats === undefined) return;
    const { active, ...counters } = this.#stats();
    const stats = connections > 0
      ? { ...counters, active: active.slice(0, connections) }
      : counters;
    this.send({ kind: "pong", seq, stats });
  }

  /**
   * The whole server's connection limits, kept by the supervisor.
   *
   * @param options The limits, as every worker was given them.
   * @returns limits for `serve()`'s `sharedLimits`.
   */
  limits(
    options: Omit<WorkerLimitsOptions, "send">,
  ): WorkerLimits {
    this.#limits ??= new WorkerLimits({
      ...options,
      send: (message) => this.send(message),
    });
    return this.#limits;
  }

  /**
   * Sends a message. Messages sent in one turn of the event loop go out in
   * one write, in order, and the write never blocks the event loop.
   *
   * @param message What to tell the supervisor.
   */
  send(message: WorkerMessage): void {
    this.#queue += `${encodeWorkerMessage(message)}\n`;
    if (this.#writing) return;
    this.#writing = true;
    queueMicrotask(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue !== "") {
        let bytes = encoder.encode(this.#queue);
        this.#queue = "";
        while (bytes.length > 0) {
          bytes = bytes.subarray(await this.#output.write(bytes));
        }
      }
    } catch {
      // The supervisor is gone; the end of standard input says so too.
      this.#queue = "";
    } finally {
      this.#writing = false;
    }
  }
}
