import type { Logger } from "@logtape/logtape";
import { acceptLoop } from "./accept_loop.ts";
import { HttpExchange, type HttpHandler } from "./http_exchange.ts";
import { listen } from "./listen.ts";

/** Limits of {@linkcode serveHttp}, which the admin endpoints pass on. */
export interface HttpServeLimits {
  /**
   * Most connections open at once. At the limit the server stops accepting
   * until one closes, and new clients wait in the kernel's backlog, as with
   * HAProxy's `maxconn`; so the endpoint never holds more descriptors than
   * this, whoever connects.
   *
   * @default {64}
   */
  maxConnections?: number;
  /**
   * Milliseconds from accept for the whole request head to arrive, like Go's
   * `ReadHeaderTimeout` or HAProxy's `timeout http-request`. A client that
   * has sent part of it is then answered 408; one that has sent nothing is
   * closed.
   *
   * @default {5000}
   */
  headerTimeout?: number;
  /**
   * Milliseconds from accept after which a connection is closed, whatever
   * it is doing: a client that does not read its answer keeps its slot no
   * longer.
   *
   * @default {10000}
   */
  requestTimeout?: number;
}

/** Options for {@linkcode serveHttp}. */
export interface HttpServeOptions extends HttpServeLimits {
  /** The address to listen on. */
  hostname: string;
  /** The port to listen on; 0 picks a free one. */
  port: number;
  /** Answers each request. */
  handler: HttpHandler;
  /** Where accept failures, the limit and handler failures are logged. */
  log: Logger;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
}

/** A running HTTP server, as returned by {@linkcode serveHttp}. */
export interface HttpServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /**
   * Settles once it has stopped; it rejects if the listener was closed
   * other than by a shutdown.
   */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, closes connections that are not in the middle of an
   * answer, lets the others finish, then resolves.
   */
  shutdown(): Promise<void>;
}

// The limit's warning repeats at most this often while clients hold it.
const LIMIT_LOG_INTERVAL_MS = 10_000;

/**
 * Serves HTTP/1.1 for the admin endpoints, without `Deno.serve`: its own
 * accept loop, which backs off when descriptors run out instead of
 * crashing the process; at most `maxConnections` connections; a deadline
 * for the request head and one for the whole exchange; one GET or HEAD
 * request per connection, answered with `Connection: close`. It listens
 * before it returns, so a port in use throws here.
 *
 * @param options Where to listen, the handler, the limits and the logger.
 * @returns the running server.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getLogger } from "@logtape/logtape";
 * import { serveHttp } from "./http_server.ts";
 *
 * await using server = serveHttp({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   handler: (request) => new Response(new URL(request.url).pathname),
 *   log: getLogger(["example"]),
 * });
 * const res = await fetch(`http://127.0.0.1:${server.addr.port}/ping`);
 * assertEquals([res.headers.get("connection"), await res.text()], ["close", "/ping"]);
 * ```
 */
export function serveHttp(options: HttpServeOptions): HttpServer {
  const {
    hostname,
    port,
    handler,
    log,
    signal,
    maxConnections = 64,
    headerTimeout = 5000,
    requestTimeout = 10_000,
  } = options;
  const listener = listen({ transport: "tcp", hostname, port });
  const addr = listener.addr as Deno.NetAddr;
  const closing = new AbortController();
  const open = new Set<HttpExchange>();
  let slotFreed: PromiseWithResolvers<void> | undefined;
  let limitLoggedAt = -Infinity;

  function handle(conn: Deno.Conn): void {
    const exchange = new HttpExchange(conn, {
      handler,
      headerTimeout,
      requestTimeout,
      log,
    });
    open.add(exchange);
    exchange.done.then(() => {
      open.delete(exchange);
      slotFreed?.resolve();
      slotFreed = undefined;
    });
  }

  function waitForCapacity(): Promise<void> | undefined {
    if (open.size < maxConnections) return undefined;
    const now = performance.now();
    if (now - limitLoggedAt >= LIMIT_LOG_INTERVAL_MS) {
      limitLoggedAt = now;
      log.warning(
        "admin connection limit of {limit} reached; new clients wait until one closes",
        { limit: maxConnections },
      );
    }
    slotFreed = Promise.withResolvers();
    return slotFreed.promise;
  }

  const loop = acceptLoop(listener, {
    signal: closing.signal,
    onConnection: handle,
    waitForCapacity,
    log,
  });

  let stopping: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    stopping ??= (async () => {
      closing.abort();
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await loop.catch(() => {});
      // Waiting clients and lingering ones are closed; answers being made
      // or written finish, within requestTimeout.
      for (const exchange of open) {
        if (exchange.state === "reading" || exchange.state === "lingering") {
          exchange.close();
        }
      }
      await Promise.all([...open].map((e) => e.done));
    })();
    return stopping;
  }

  const finished = loop.then(
    () => shutdown(),
    async (err) => {
      log.error("admin endpoint stopped: {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
      await shutdown();
      throw err;
    },
  );
  // A caller that never looks at `finished` must not crash the process.
  finished.catch(() => {});
  if (signal?.aborted) void shutdown();
  else signal?.addEventListener("abort", () => void shutdown(), { once: true });

  return {
    addr,
    finished,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
