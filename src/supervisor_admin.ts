import { getLogger } from "@logtape/logtape";
import { adminHandler } from "./admin_handler.ts";
import { type AdminServer, warnIfExposed } from "./admin_server.ts";
import { formatAddr } from "./format_addr.ts";
import { serveHttp } from "./http_server.ts";
import type { ServerSettings } from "./serve.ts";
import { ServerStats, type StatsSnapshot } from "./server_stats.ts";
import { mergeSnapshots } from "./supervisor_stats.ts";

const log = getLogger(["upcase", "admin"]);

// A worker that does not answer in this time is left out of the totals
// rather than holding up the scrape.
const WORKER_TIMEOUT_MS = 2000;

/** Options for {@linkcode serveSupervisorAdmin}. */
export interface SupervisorAdminOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port to listen on; 0 picks a free one. */
  port: number;
  /** The data address that all workers share. */
  addr: Deno.NetAddr;
  /** How many workers the supervisor runs. */
  workers: number;
  /** The settings every worker runs with. */
  settings: ServerSettings;
  /** The admin ports of the workers that are up now. */
  workerPorts: () => number[];
  /** Whether the supervisor is shutting down. */
  draining: () => boolean;
  /** The whole server's connection limits, when one is set. */
  limits?: { readonly waiting: number };
  /** Settles once every worker has exited for good. */
  finished: Promise<unknown>;
}

async function fetchSnapshot(port: number): Promise<StatsSnapshot | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status.json`, {
      signal: AbortSignal.timeout(WORKER_TIMEOUT_MS),
    });
    const body = await res.json() as { stats: StatsSnapshot };
    return body.stats;
  } catch {
    // A worker that has just crashed or is restarting.
    return undefined;
  }
}

/**
 * Serves the admin endpoint of a supervisor: the same paths as a single
 * server's, with totals across the workers. Each request first fetches
 * every worker's `/status.json` and adds them up, so the counters are exact
 * at that moment. `/readyz` is 503 `draining` while the supervisor shuts
 * down, and `ready` otherwise; a server at `--max-connections`, or with no
 * worker answering, shows as paused on `/metrics` and the status page.
 *
 * @param options Where to listen, and how to reach the workers.
 * @returns the running admin server.
 */
export function serveSupervisorAdmin(
  options: SupervisorAdminOptions,
): AdminServer {
  const started = performance.now();
  let current: StatsSnapshot = new ServerStats().snapshot([]);
  const handle = adminHandler({
    addr: options.addr,
    settings: options.settings,
    stats: () => current,
    finished: options.finished.then(() => ({ drained: 0, cut: 0 })),
    get draining() {
      return options.draining();
    },
  }, { workers: options.workers });
  // The limits are the whole server's, kept by the supervisor: no worker
  // knows whether the server is full.
  const max = options.settings.maxConnections;
  const full = (total: StatsSnapshot) =>
    max > 0 &&
    (total.active.length >= max || (options.limits?.waiting ?? 0) > 0);
  async function refresh(): Promise<void> {
    const found = await Promise.all(options.workerPorts().map(fetchSnapshot));
    const snapshots = found.filter((s) => s !== undefined);
    const total = snapshots.length > 0
      ? mergeSnapshots(snapshots)
      : { ...new ServerStats().snapshot([]), paused: true };
    current = {
      ...total,
      draining: total.draining || options.draining(),
      paused: snapshots.length === 0 || full(total),
      uptimeSeconds: (performance.now() - started) / 1000,
    };
  }
  const http = serveHttp({
    hostname: options.hostname,
    port: options.port,
    log,
    async handler(request) {
      if (new URL(request.url).pathname !== "/") await refresh();
      return handle(request);
    },
  });
  log.info("admin listening on {address} (totals of all workers)", {
    address: formatAddr(http.addr),
  });
  warnIfExposed(http.addr);
  return http;
}
