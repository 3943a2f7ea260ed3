import { getLogger } from "@logtape/logtape";
import { flushLogs } from "../logging/logging.ts";

const log = getLogger(["upcase", "main"]);
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** A signal that stops upcase. */
export type StopSignal = keyof typeof SIGNAL_NUMBERS;

/** What {@linkcode wireSignals} does on a stop signal. */
export interface StopActions {
  /** On the first SIGINT or SIGTERM: logs it and starts the drain. */
  stop(signal: StopSignal): void;
  /**
   * On the second: logs it and ends what must not outlive the process.
   * The process then exits at once.
   */
  stopNow(signal: StopSignal): void;
}

/**
 * Turns the first SIGINT or SIGTERM into a graceful shutdown, and a second
 * one into an exit at once with code 128 + the signal's number, once the
 * logs are flushed. The server and the supervisor of `--workers` both stop
 * this way.
 *
 * @param actions What the first and the second signal do.
 * @returns a function that removes the handlers.
 */
export function wireSignals(actions: StopActions): () => void {
  let received = 0;
  const handlers = Object.entries(SIGNAL_NUMBERS).map(([name, number]) => {
    const signal = name as StopSignal;
    const handler = () => {
      if (received++ === 0) return actions.stop(signal);
      actions.stopNow(signal);
      // Briefly: the operator asked for an exit now.
      void flushLogs(500).then(() => Deno.exit(128 + number));
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  return () => handlers.forEach((remove) => remove());
}

/** What {@linkcode wireReload} returns. */
export interface Reloader {
  /** Queues a reload, as a SIGHUP does. */
  reload(): void;
  /** Removes the SIGHUP handler. */
  unwire(): void;
}

/** Options for {@linkcode wireReload}. */
export interface ReloadOptions {
  /** Whether SIGHUP itself reloads; by default it does. */
  bySignal?: boolean;
  /** Logs a SIGHUP that reloads; by default as the server does. */
  announce?: () => void;
}

/**
 * Runs `reload` on each SIGHUP, one reload after another. Wire it only with
 * TLS: without it SIGHUP keeps its default action and ends the process.
 * With `bySignal: false` (a worker of `--workers`, whose supervisor passes
 * reloads on over its pipe) SIGHUP is caught and ignored, so that one sent
 * to the whole process group neither ends the worker nor reloads it twice;
 * reloads then come only through the returned `reload()`.
 *
 * @param reload Reloads the certificate and key, or has it done.
 * @param options Whether SIGHUP itself reloads, and how it is logged.
 * @returns a way to reload, and to remove the handler.
 */
export function wireReload(
  reload: () => Promise<void> | void,
  options: ReloadOptions = {},
): Reloader {
  const {
    bySignal = true,
    announce = () =>
      log.info("received SIGHUP; reloading the TLS certificate and key"),
  } = options;
  let reloads = Promise.resolve();
  const queue = () => void (reloads = reloads.then(reload));
  if (Deno.build.os === "windows") return { reload: queue, unwire() {} };
  const handler = bySignal
    ? () => {
      announce();
      queue();
    }
    : () =>
      log.info(
        "received SIGHUP; ignored: the supervisor passes reloads on (send SIGHUP to it)",
      );
  Deno.addSignalListener("SIGHUP", handler);
  return {
    reload: queue,
    unwire: () => Deno.removeSignalListener("SIGHUP", handler),
  };
}
