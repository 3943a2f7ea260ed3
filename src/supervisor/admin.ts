import { getLogger } from "@logtape/logtape";
import { adminHandler } from "../admin/handler.ts";
import { type AdminServer, warnIfExposed } from "../admin/server.ts";
import { formatAddr } from "../common/format_addr.ts";
import { serveHttp } from "../http/server.ts";
import type { ServerSettings } from "../server/serve.ts";
import { ServerStats, type StatsSnapshot } from "../server/stats.ts";

const log = getLogger(["upcase", "admin"]);

// The most open connections /status.json lists; each worker is asked for
// its share.
const LISTED = 500;

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
  /**
   * The totals across the workers, each worker listing up to `connections`
   * of its open connections; settles within a moment even when a worker
   * does not answer, with what that worker said last.
   */
  totals: (connections: number) => Promise<StatsSnapshot>;
  /** The workers that serve now, and whether each has stopped answering. */
  workerStates: () => { id: number; silent: boolean }[];
  /** Whether the supervisor is shutting down. */
  draining: () => boolean;
  /** The whole server's connection limits, when one is set. */
  limits?: { readonly waiting: number };
  /** Settles once every worker has exited for good. */
  finished: Promise<unknown>;
}

function notReady(reason: string): Response {
  return new Response(reason, {
    status: 503,
    headers: {
      "cache-control": "no-store",
      "content-type": "text/plain; charset=utf-8",
    },
  });
}

// Why the server is not ready, though it is not draining: a worker that
// does not answer, which the kernel still hands new clients to, or none
// serving at all.
function unreadiness(
  states: { id: number; silent: boolean }[],
): string | undefined {
  const silent = states.filter((s) => s.silent).map((s) => `${s.id}`);
  if (silent.length > 0) {
    const which = silent.length === 1 ? "worker" : "workers";
    return `not answering: ${which} ${silent.join(", ")}`;
  }
  return states.length === 0 ? "no worker serving" : undefined;
}

/**
 * Serves the admin endpoint of a supervisor: the same paths as a single
 * server's, with totals across the workers, from the workers' answers to
 * the supervisor's pings over their pipes. `/metrics` and `/status.json`
 * ping every worker and wait for the answers, at most a quarter of a
 * second (requests at the same moment share them); a worker that answers
 * late counts with what it said last. Only `/status.json` asks the workers
 * to list connections, 500 in all. `/healthz` and `/readyz` ask nobody:
 * `/readyz` is 503 `draining` while the supervisor shuts down, and 503 while
 * a worker does not answer its pings or none serves; a server at
 * `--max-connections`, or with no worker serving, shows as paused on
 * `/metrics` and the status page.
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
  }, { workers: options.workers, connectionLimit: LISTED });
  // The limits are the whole server's, kept by the supervisor: no worker
  // knows whether the server is full.
  const max = options.settings.maxConnections;
  const full = (total: StatsSnapshot) =>
    max > 0 && (total.open >= max || (options.limits?.waiting ?? 0) > 0);
  async function refresh(connections: number): Promise<void> {
    const total = await options.totals(connections);
    current = {
      ...total,
      draining: total.draining || options.draining(),
      paused: options.workerStates().length === 0 || full(total),
      uptimeSeconds: (performance.now() - started) / 1000,
    };
  }
  const http = serveHttp({
    hostname: options.hostname,
    port: options.port,
    log,
    async handler(request) {
      const path = new URL(request.url).pathname;
      const read = request.method === "GET" || request.method === "HEAD";
      if (path === "/readyz" && read && !options.draining()) {
        const reason = unreadiness(options.workerStates());
        if (reason !== undefined) return notReady(reason);
      }
      if (path === "/metrics") await refresh(0);
      if (path === "/status.json") {
        await refresh(Math.ceil(LISTED / options.workers));
      }
      return handle(request);
    },
  });
  log.info("admin listening on {address} (totals of all workers)", {
    address: formatAddr(http.addr),
  });
  warnIfExposed(http.addr);
  return http;
}
