import { getLogger } from "@logtape/logtape";
import {
  adminHandler,
  type AdminHandlerOptions,
  type AdminTarget,
} from "./handler.ts";
import { CidrSet } from "../proxy/cidr.ts";
import { formatAddr } from "../common/format_addr.ts";
import {
  type HttpServeLimits,
  type HttpServer,
  serveHttp,
} from "../http/server.ts";

const log = getLogger(["upcase", "admin"]);

const LOOPBACK = CidrSet.parse("127.0.0.0/8,::1/128");

/** Options for {@linkcode serveAdmin}. */
export interface AdminServeOptions
  extends AdminHandlerOptions, HttpServeLimits {
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
export type AdminServer = HttpServer;

/**
 * Warns, once at start, when an admin endpoint listens on an address other
 * machines can reach: it has no authentication, and it shows every
 * client's address.
 *
 * @param addr The address the endpoint listens on.
 * @returns whether it warned.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { warnIfExposed } from "./server.ts";
 *
 * assertEquals(warnIfExposed({ transport: "tcp", hostname: "::1", port: 9090 }), false);
 * ```
 */
export function warnIfExposed(addr: Deno.NetAddr): boolean {
  if (LOOPBACK.has(addr.hostname)) return false;
  log.warning(
    "the admin endpoint on {address} is not on a loopback address: anyone who can reach it, without authentication, sees every client's address and the connection table; limit who can reach the port (a firewall, a Kubernetes NetworkPolicy) or bind it to 127.0.0.1",
    { address: formatAddr(addr) },
  );
  return true;
}

/**
 * Serves the admin endpoint over HTTP, on its own port: `/metrics`,
 * `/healthz`, `/readyz`, `/status.json` and the status page. It is
 * independent of the data server's lifetime, so that it can report a drain
 * while one runs; shut it down after the data server has finished. It runs
 * on {@linkcode serveHttp}, which survives running out of descriptors and
 * caps what clients can hold; on an address that is not loopback it warns.
 *
 * @param options Where to listen, the server to report on, the limits, and
 * how to stop.
 * @returns the running admin server.
 *
 * @example Scrape the metrics
 * ```ts
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 * import { serve } from "../server/serve.ts";
 * import { serveAdmin } from "./server.ts";
 *
 * await using server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
 * await using admin = serveAdmin({ hostname: "127.0.0.1", port: 0, server, onListen() {} });
 * const res = await fetch(`http://127.0.0.1:${admin.addr.port}/metrics`);
 * assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * assertStringIncludes(await res.text(), "upcase_connections_active 0\n");
 * ```
 */
export function serveAdmin(options: AdminServeOptions): AdminServer {
  const {
    hostname,
    port,
    server,
    signal,
    onListen,
    info,
    connectionLimit,
    ...limits
  } = options;
  const handler = adminHandler(server, {
    ...(info ? { info } : {}),
    ...(connectionLimit === undefined ? {} : { connectionLimit }),
  });
  const http = serveHttp({
    ...limits,
    hostname,
    port,
    handler,
    log,
    ...(signal ? { signal } : {}),
  });
  if (onListen) onListen(http.addr);
  else {
    log.info("admin listening on {address}", {
      address: formatAddr(http.addr),
    });
  }
  warnIfExposed(http.addr);
  return http;
}
