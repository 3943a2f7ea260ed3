import { getLogger } from "@logtape/logtape";

const log = getLogger(["upcase", "accept"]);

/** Something that hands out connections, such as a `Deno.Listener`. */
export interface Acceptor<C> {
  /** Waits for the next connection. */
  accept(): Promise<C>;
}

/**
 * What to do about a failed `accept()`: `skip` the one connection that
 * failed, `backoff` because the process or system is short of a resource, or
 * give up because the failure is `fatal`.
 */
export type AcceptErrorKind = "skip" | "backoff" | "fatal";

// The queued connection died before it was accepted; the next one is fine.
const SKIP_CODES = new Set(["ENOTCONN", "ECONNABORTED", "ECONNRESET"]);
// Out of descriptors, buffers or memory: retrying at once only spins.
const BACKOFF_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/**
 * Sorts an `accept()` failure by the errno code that Deno attaches to it.
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
 * ```
 */
export function classifyAcceptError(err: unknown): AcceptErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "fatal";
  if (SKIP_CODES.has(code)) return "skip";
  if (BACKOFF_CODES.has(code)) return "backoff";
  return "fatal";
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

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Accepts connections until `signal` aborts, handing each one to
 * `onConnection` without waiting for it. A transient failure never ends the
 * loop: a connection that died in the queue is skipped, and a shortage of
 * descriptors or memory pauses accepting with exponential backoff, logged
 * once per episode. Any other failure rejects.
 *
 * @param listener Where connections come from.
 * @param options The handler, the stop signal and the backoff settings.
 * @returns a promise that resolves when the loop has stopped.
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
    minBackoff = 5,
    maxBackoff = 1000,
    sleep = sleepUnlessAborted,
  } = options;
  let backoff = 0;
  let failures = 0;
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
      if (kind === "fatal") throw err;
      if (kind === "skip") {
        log.debug("skipped a connection that failed before accept: {error}", {
          error: describe(err),
        });
        continue;
      }
      if (failures++ === 0) {
        log.warning("accept failed: {error}; pausing accepts until it clears", {
          error: describe(err),
        });
      }
      backoff = backoff === 0 ? minBackoff : Math.min(backoff * 2, maxBackoff);
      await sleep(backoff, signal);
      continue;
    }
    if (failures > 0) {
      log.warning("accepting again after {failures} failed accepts", {
        failures,
      });
      failures = 0;
      backoff = 0;
    }
    onConnection(conn);
  }
}
