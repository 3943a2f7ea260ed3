import { getLogger, type Logger } from "@logtape/logtape";
import { errorMessage } from "../common/error_message.ts";

/** Something that hands out connections, such as a `Deno.Listener`. */
export interface Acceptor<C> {
  /** Waits for the next connection. */
  accept(): Promise<C>;
}

/**
 * What to do about a failed `accept()`: `skip` the one connection that
 * failed and accept the next at once, `backoff` because the process or
 * system is short of a resource (or the failure is unknown) and retrying at
 * once would only spin, or stop because the listener is `closed`.
 */
export type AcceptErrorKind = "skip" | "backoff" | "closed";

// The queued connection failed before it was accepted; the next one is fine.
// Linux also passes a new connection's pending network error on to accept(),
// and accept(2) says to retry those as EAGAIN: the listener itself is fine.
const SKIP_CODES = new Set([
  "ECONNABORTED",
  "ECONNRESET",
  "ENOTCONN",
  "EPROTO",
  "EPERM",
  "ENETDOWN",
  "ENOPROTOOPT",
  "EHOSTDOWN",
  "ENONET",
  "EHOSTUNREACH",
  "EOPNOTSUPP",
  "ENETUNREACH",
  "ETIMEDOUT",
]);
// Routine enough under load to be logged only at debug level, each time.
const ROUTINE_SKIP_CODES = new Set(["ECONNABORTED", "ECONNRESET", "ENOTCONN"]);
// The listening socket itself is gone or was never a listener: no retry
// can help.
const CLOSED_CODES = new Set(["EBADF", "EINVAL", "ENOTSOCK"]);

/**
 * Names an `accept()` failure: its errno code (`EMFILE`), else the error's
 * name, else `unknown`. Log lines and the accept error counters use it.
 *
 * @param err What `accept()` rejected with.
 * @returns the name.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { acceptErrorName } from "./accept_loop.ts";
 *
 * assertEquals(acceptErrorName(Object.assign(new Error("x"), { code: "EPROTO" })), "EPROTO");
 * assertEquals(acceptErrorName(new Deno.errors.BadResource("closed")), "BadResource");
 * assertEquals(acceptErrorName("odd"), "unknown");
 * ```
 */
export function acceptErrorName(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return err instanceof Error ? err.name : "unknown";
}

/**
 * Sorts an `accept()` failure by the errno code that Deno attaches to it, or
 * by its class for a listener that Deno has closed (`BadResource`, or
 * `Interrupted` for an accept cut short by the close). Anything not known is
 * retried after a pause, as Go's `net/http` does with temporary errors: only
 * a closed listener ends the loop.
 *
 * @param err What `accept()` rejected with.
 * @returns whether to skip, back off, or stop.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { classifyAcceptError } from "./accept_loop.ts";
 *
 * const err = Object.assign(new Error("Too many open files"), { code: "EMFILE" });
 * assertEquals(classifyAcceptError(err), "backoff");
 * assertEquals(classifyAcceptError(new Error("no code")), "backoff");
 * assertEquals(classifyAcceptError(new Deno.errors.BadResource("closed")), "closed");
 * ```
 */
export function classifyAcceptError(err: unknown): AcceptErrorKind {
  if (
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted
  ) {
    return "closed";
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (SKIP_CODES.has(code)) return "skip";
    if (CLOSED_CODES.has(code)) return "closed";
  }
  return "backoff";
}

/** Options for {@linkcode acceptLoop}. */
export interface AcceptLoopOptions<C> {
  /** Takes each new connection. It must not throw, and is not awaited. */
  onConnection: (conn: C) => void;
  /** Aborted when the listener is being closed; the loop then ends. */
  signal: AbortSignal;
  /**
   * Called before each accept. A promise it returns pauses accepting until
   * it settles, leaving new clients in the kernel's backlog, as gevent's
   * Pool does at its limit.
   */
  waitForCapacity?: () => Promise<void> | undefined;
  /** Called for every failed accept, before it is handled. */
  onAcceptError?: (kind: AcceptErrorKind, err: unknown) => void;
  /**
   * First pause after a resource error, in milliseconds; it doubles on each
   * further error up to `maxBackoff`, as in Go's net/http and gevent.
   *
   * @default {5}
   */
  minBackoff?: number;
  /**
   * Longest pause, in milliseconds.
   *
   * @default {1000}
   */
  maxBackoff?: number;
  /** Waits `ms` or until `signal` aborts; replaceable for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Where the failures are logged, so that each listener's lines say whose
   * they are.
   *
   * @default {getLogger(["upcase", "accept"])}
   */
  log?: Logger;
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * A run of failed accepts, from the first failure to the next accepted
 * connection: it logs each kind of failure once, and sets the pauses.
 */
class FailureRun {
  readonly #log: Logger;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #seen = new Set<string>();
  #backoff = 0;
  #paused = 0;

  constructor(log: Logger, backoff: { min: number; max: number }) {
    this.#log = log;
    this.#minBackoff = backoff.min;
    this.#maxBackoff = backoff.max;
  }

  /** Logs a failure the first time its kind comes up in this run. */
  failed(kind: "skip" | "backoff", err: unknown): void {
    const name = acceptErrorName(err);
    const fields = { error: errorMessage(err), code: name };
    if (kind === "skip" && ROUTINE_SKIP_CODES.has(name)) {
      this.#log.debug(
        "skipped a connection that failed before accept: {error}",
        fields,
      );
      return;
    }
    if (this.#seen.has(name)) return;
    this.#seen.add(name);
    if (kind === "skip") {
      this.#log.warning(
        "accept failed: {error}; skipped that connection",
        fields,
      );
    } else {
      this.#log.warning(
        "accept failed: {error}; pausing accepts until it clears",
        fields,
      );
    }
  }

  /** The next pause: `minBackoff`, doubling up to `maxBackoff`. */
  nextPause(): number {
    this.#paused++;
    this.#backoff = this.#backoff === 0
      ? this.#minBackoff
      : Math.min(this.#backoff * 2, this.#maxBackoff);
    return this.#backoff;
  }

  /** Ends the run at an accepted connection; the next failure starts anew. */
  end(): void {
    if (this.#paused === 0 && this.#seen.size === 0) return;
    if (this.#paused > 0) {
      this.#log.warning("accepting again after {failures} failed accepts", {
        failures: this.#paused,
      });
    }
    this.#seen.clear();
    this.#backoff = 0;
    this.#paused = 0;
  }
}

/**
 * Accepts connections until `signal` aborts, handing each one to
 * `onConnection` without waiting for it. A failure never ends the loop
 * unless the listener is closed: a connection that failed in the queue is
 * skipped, and a shortage of descriptors or memory, or a failure of an
 * unknown kind, pauses accepting with exponential backoff. Each kind of
 * failure is logged once per run of failures.
 *
 * @param listener Where connections come from.
 * @param options The handler, the stop signal and the backoff settings.
 * @returns a promise that resolves when the loop has stopped for `signal`,
 * and rejects with the error if the listener was closed otherwise.
 */
export async function acceptLoop<C>(
  listener: Acceptor<C>,
  options: AcceptLoopOptions<C>,
): Promise<void> {
  const {
    onConnection,
    signal,
    onAcceptError,
    waitForCapacity,
    sleep = sleepUnlessAborted,
  } = options;
  const run = new FailureRun(options.log ?? getLogger(["upcase", "accept"]), {
    min: options.minBackoff ?? 5,
    max: options.maxBackoff ?? 1000,
  });
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  while (!signal.aborted) {
    const pause = waitForCapacity?.();
    if (pause) {
      await Promise.race([pause, aborted]);
      continue;
    }
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (err) {
      // Closing the listener makes the pending accept fail; that is the end.
      if (signal.aborted) return;
      const kind = classifyAcceptError(err);
      onAcceptError?.(kind, err);
      if (kind === "closed") throw err;
      run.failed(kind, err);
      if (kind === "backoff") await sleep(run.nextPause(), signal);
      continue;
    }
    run.end();
    onConnection(conn);
  }
}
