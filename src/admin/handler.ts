import { formatAddr } from "../common/format_addr.ts";
import { type BuildInfo, renderMetrics } from "./prometheus.ts";
import type { UpcaseServer } from "../server/serve.ts";
import { statusPage } from "./status_page.ts";
import { VERSION } from "../common/version.ts";

/** What the admin endpoint reads from a running server. */
export type AdminTarget = Pick<
  UpcaseServer,
  "addr" | "settings" | "stats" | "finished" | "draining"
>;

/** Options for {@linkcode adminHandler}. */
export interface AdminHandlerOptions {
  /**
   * The versions that `/metrics` and `/status.json` report.
   *
   * @default {{ version: VERSION, deno: Deno.version.deno }}
   */
  info?: BuildInfo;
  /**
   * Most open connections that `/status.json` lists; the totals always count
   * them all. A page polled every second should not carry ten thousand rows.
   *
   * @default {500}
   */
  connectionLimit?: number;
  /**
   * With `--workers`, how many: `/status.json` then says so, and its limits
   * and totals are the whole server's.
   */
  workers?: number;
}

const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";

// The page has no outside assets, and this makes sure it never gains any:
// the browser may only run the inline script and style and fetch from here.
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  "img-src data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function reply(
  body: string,
  status: number,
  headers: Record<string, string>,
): Response {
  // Every answer describes this instant; a cached one would mislead a probe.
  return new Response(body, {
    status,
    headers: { "cache-control": "no-store", ...headers },
  });
}

function text(body: string, status = 200): Response {
  return reply(body, status, { "content-type": "text/plain; charset=utf-8" });
}

/**
 * Builds the admin endpoint's request handler for a running server:
 * `/metrics` (Prometheus text), `/healthz`, `/readyz`, `/status.json`, and
 * the live status page at `/`. It uses web-standard types only, so it can be
 * called without a socket.
 *
 * @param server The server to report on.
 * @param options The versions to report and the connection list's length.
 * @returns a handler for `Deno.serve` or any fetch-style server.
 *
 * @example Readiness follows the server's state
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { adminHandler } from "./handler.ts";
 * import { serve } from "../server/serve.ts";
 *
 * await using server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
 * const handle = adminHandler(server);
 * const ready = handle(new Request("http://admin/readyz"));
 * assertEquals([ready.status, await ready.text()], [200, "ready"]);
 * await server.shutdown();
 * const drained = handle(new Request("http://admin/readyz"));
 * assertEquals([drained.status, await drained.text()], [503, "draining"]);
 * ```
 */
export function adminHandler(
  server: AdminTarget,
  options: AdminHandlerOptions = {},
): (request: Request) => Response {
  const {
    info = { version: VERSION, deno: Deno.version.deno },
    connectionLimit = 500,
    workers,
  } = options;
  let stopped = false;
  const stop = () => void (stopped = true);
  server.finished.then(stop, stop);

  const routes: Record<string, () => Response> = {
    "/metrics": () =>
      reply(
        renderMetrics(server.stats(), {
          ...info,
          transport: server.settings.transport,
        }),
        200,
        {
          "content-type": METRICS_TYPE,
        },
      ),
    // Alive until the data server has stopped for good; a drain still
    // serves the connections it has.
    "/healthz": () => stopped ? text("stopped", 503) : text("ok"),
    // Draining, and nothing else: at --max-connections the server still
    // serves, and one client that fills the slots must not take every
    // instance out of the balancer's rotation in turn. A pause shows on
    // /metrics and the status page. This is cheap, and is asked every few
    // seconds: no snapshot of the connections.
    "/readyz": () =>
      server.draining || stopped ? text("draining", 503) : text("ready"),
    "/status.json": () => {
      const stats = server.stats();
      const body = {
        ...info,
        addr: formatAddr(server.addr),
        settings: server.settings,
        ...(workers === undefined ? {} : { workers }),
        stopped,
        activeTotal: stats.open,
        stats: { ...stats, active: stats.active.slice(0, connectionLimit) },
      };
      return reply(JSON.stringify(body), 200, {
        "content-type": "application/json; charset=utf-8",
      });
    },
    "/": () =>
      reply(statusPage(), 200, {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": PAGE_POLICY,
        "x-content-type-options": "nosniff",
      }),
  };

  return (request) => {
    const route = routes[new URL(request.url).pathname];
    if (!route) return text("not found", 404);
    // Deno.serve answers HEAD with the GET's headers and no body.
    if (request.method !== "GET" && request.method !== "HEAD") {
      return reply("method not allowed", 405, {
        "content-type": "text/plain; charset=utf-8",
        allow: "GET, HEAD",
      });
    }
    return route();
  };
}
