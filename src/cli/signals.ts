import { getLogger } from "@logtape/logtape";
import { flushLogs } from "../logging/logging.ts";

const log = getLogger(["upcase", "main"]);
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Turns the first SIGINT or SIGTERM into a graceful shutdown, and a second
 * one into an exit at once with code 128 + the signal's number.
 *
 * @param shutdown Starts the drain.
 * @param drainSeconds The drain timeout, for the log line.
 * @returns a function that removes the handlers.
 */
export function wireSignals(
  shutdown: () => void,
  drainSeconds: number,
): () => void {
  let received = 0;
  const handlers = Object.entries(SIGNAL_NUMBERS).map(([name, number]) => {
    const signal = name as Deno.Signal;
    const handler = () => {
      if (received++ > 0) {
        log.warning("received {signal} again; exiting now", { signal });
        // Briefly: the operator asked for an exit now.
        void flushLogs(500).then(() => Deno.exit(128 + number));
        return;
      }
      log.info("received {signal}; draining for up to {seconds} s", {
        signal,
        seconds: drainSeconds,
      });
      shutdown();
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

/**
 * Runs `reload` on each SIGHUP, one reload after another. Wire it only with
 * TLS: without it SIGHUP keeps its default action and ends the process.
 * With `bySignal: false` (a worker of `--workers`, whose supervisor passes
 * reloads on over its pipe) SIGHUP is caught and ignored, so that one sent
 * to the whole process group neither ends the worker nor reloads it twice;
 * reloads then come only through the returned `reload()`.
 *
 * @param reload Reloads the certificate and key.
 * @param options Whether SIGHUP itself reloads; by default it does.
 * @returns a way to reload, and to remove the handler.
 */
export function wireReload(
  reload: () => Promise<void>,
  options: { bySignal?: boolean } = {},
): Reloader {
  const { bySignal = true } = options;
  let reloads = Promise.resolve();
  const queue = () => void (reloads = reloads.then(reload));
  if (Deno.build.os === "windows") return { reload: queue, unwire() {} };
  const handler = bySignal
    ? () => {
      log.info("received SIGHUP; reloading the TLS certificate and key");
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
