import type { Logger } from "@logtape/logtape";
import { acceptLoop } from "../server/accept_loop.ts";
import { HttpExchange, type HttpHandler } from "./exchange.ts";
import { listen } from "../transport/deno/listen.ts";
import type { Conn, Listener } from "../transport/types.ts";
import { errorMessage } from "../common/error_message.ts";
import { onAbort } from "../common/on_abort.ts";

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

/** A running server's state: its listener, its connections and its slots. */
class RunningHttpServer implements HttpServer {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly #listener: Listener;
  readonly #options: Required<HttpServeLimits> & HttpServeOptions;
  readonly #closing = new AbortController();
  readonly #open = new Set<HttpExchange>();
  readonly #loop: Promise<void>;
  #slotFreed: PromiseWithResolvers<void> | undefined;
  #limitLoggedAt = -Infinity;
  #stopping: Promise<void> | undefined;

  constructor(options: Required<HttpServeLimits> & HttpServeOptions) {
    this.#options = options;
    const { hostname, port } = options;
    this.#listener = listen({ transport: "tcp", hostname, port });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.#loop = acceptLoop(this.#listener, {
      signal: this.#closing.signal,
      onConnection: (conn) => this.#track(conn),
      waitForCapacity: () => this.#waitForCapacity(),
      log: options.log,
    });
    this.finished = this.#loop.then(
      () => this.shutdown(),
      async (err) => {
        options.log.error("admin endpoint stopped: {error}", {
          error: errorMessage(err),
        });
        await this.shutdown();
        throw err;
      },
    );
    // A caller that never looks at `finished` must not crash the process.
    this.finished.catch(() => {});
  }

  #track(conn: Conn): void {
    const { handler, headerTimeout, requestTimeout, log } = this.#options;
    const exchange = new HttpExchange(conn, {
      handler,
      headerTimeout,
      requestTimeout,
      log,
    });
    this.#open.add(exchange);
    exchange.done.then(() => {
      this.#open.delete(exchange);
      this.#slotFreed?.resolve();
      this.#slotFreed = undefined;
    });
  }

  #waitForCapacity(): Promise<void> | undefined {
    const { maxConnections, log } = this.#options;
    if (this.#open.size < maxConnections) return undefined;
    const now = performance.now();
    if (now - this.#limitLoggedAt >= LIMIT_LOG_INTERVAL_MS) {
      this.#limitLoggedAt = now;
      log.warning(
        "admin connection limit of {limit} reached; new clients wait until one closes",
        { limit: maxConnections },
      );
    }
    this.#slotFreed = Promise.withResolvers();
    return this.#slotFreed.promise;
  }

  shutdown(): Promise<void> {
    this.#stopping ??= this.#drain();
    return this.#stopping;
  }

  async #drain(): Promise<void> {
    this.#closing.abort();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#loop.catch(() => {});
    // Waiting clients and lingering ones are closed; answers being made or
    // written finish, within requestTimeout.
    for (const exchange of this.#open) {
      if (exchange.state === "reading" || exchange.state === "lingering") {
        exchange.close();
      }
    }
    await Promise.all([...this.#open].map((e) => e.done));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

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
 * import { serveHttp } from "./server.ts";
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
  const server = new RunningHttpServer({
    maxConnections: 64,
    headerTimeout: 5000,
    requestTimeout: 10_000,
    ...options,
  });
  const { signal } = options;
  onAbort(signal, () => void server.shutdown());
  return server;
}
