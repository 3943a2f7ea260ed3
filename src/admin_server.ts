import { getLogger } from "@logtape/logtape";
import {
  adminHandler,
  type AdminHandlerOptions,
  type AdminTarget,
} from "./admin_handler.ts";
import { formatAddr } from "./format_addr.ts";

const log = getLogger(["upcase", "admin"]);

/** Options for {@linkcode serveAdmin}. */
export interface AdminServeOptions extends AdminHandlerOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port to listen on; 0 picks a free one. */
  port: number;
  /** The data server to report on. */
  server: AdminTarget;
  /** Aborting it shuts the admin server down. */
  signal?: AbortSignal;
  /** Called once it listens; by default it logs the address. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running admin endpoint, as returned by {@linkcode serveAdmin}. */
export interface AdminServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Settles once it has stopped. */
  readonly finished: Promise<void>;
  /** Stops accepting, lets requests in flight finish, then closes. */
  shutdown(): Promise<void>;
}

/**
 * Serves the admin endpoint over HTTP with `Deno.serve`, on its own port:
 * `/metrics`, `/healthz`, `/readyz`, `/status.json` and the status page.
 * It is independent of the data server's lifetime, so that it can report a
 * drain while one runs; shut it down after the data server has finished.
 *
 * @param options Where to listen, the server to report on, and how to stop.
 * @returns the running admin server.
 *
 * @example Scrape the metrics
 * ```ts
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 * import { serve } from "./serve.ts";
 * import { serveAdmin } from "./admin_server.ts";
 *
 * await using server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
 * await using admin = serveAdmin({ hostname: "127.0.0.1", port: 0, server, onListen() {} });
 * const res = await fetch(`http://127.0.0.1:${admin.addr.port}/metrics`);
 * assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * assertStringIncludes(await res.text(), "upcase_connections_active 0\n");
 * ```
 */
export function serveAdmin(options: AdminServeOptions): AdminServer {
  const { hostname, port, server, signal, onListen, ...handlerOptions } =
    options;
  const handler = adminHandler(server, handlerOptions);
  const http = Deno.serve({
    hostname,
    port,
    ...(signal ? { signal } : {}),
    // Deno.serve's default would print to the console.
    onListen: onListen ??
      ((addr) =>
        log.info("admin listening on {address}", {
          address: formatAddr(addr),
        })),
    onError(err) {
      log.error("admin request failed: {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
      return new Response("internal error", { status: 500 });
    },
    handler,
  });
  let stopping: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    stopping ??= http.shutdown();
    return stopping;
  }
  return {
    addr: http.addr,
    finished: http.finished,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
