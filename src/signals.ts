import { getLogger } from "@logtape/logtape";
import { flushLogs } from "./logging.ts";

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

/**
 * Runs `reload` on each SIGHUP, one reload after another. Wire it only with
 * TLS: without it SIGHUP keeps its default action and ends the process.
 *
 * @param reload Reloads the certificate and key.
 * @returns a function that removes the handler.
 */
export function wireReload(reload: () => Promise<void>): () => void {
  if (Deno.build.os === "windows") return () => {};
  let reloads = Promise.resolve();
  const handler = () => {
    log.info("received SIGHUP; reloading the TLS certificate and key");
    reloads = reloads.then(reload);
  };
  Deno.addSignalListener("SIGHUP", handler);
  return () => Deno.removeSignalListener("SIGHUP", handler);
}
