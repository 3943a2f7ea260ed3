import { getLogger } from "@logtape/logtape";
import { formatAddr } from "../common/format_addr.ts";
import { ConnectionTask } from "../connection/task.ts";
import { checkTlsPem, type TlsPem } from "../tls/pem.ts";
import { listen } from "../transport/deno/listen.ts";
import { listenNode } from "../transport/node/listen.ts";
import type { Conn, Listener } from "../transport/types.ts";
import { acceptLoop } from "./accept_loop.ts";
import { AdmissionControl } from "./admission_control.ts";
import { Connections, type DrainSummary } from "./connections.ts";
import { LoopLag } from "./loop_lag.ts";
import {
  type ResolvedServeOptions,
  resolveServeOptions,
  type ServeOptions,
  type ServerSettings,
  serverSettings,
  type ServeUnixOptions,
} from "./options.ts";
import type { Admission, SharedLimits } from "./shared_limits.ts";
import { ServerStats, type StatsSnapshot } from "./stats.ts";

export type { DrainSummary } from "./connections.ts";
export type {
  ServeCommonOptions,
  ServeOptions,
  ServerSettings,
  ServeUnixOptions,
} from "./options.ts";
import { onAbort } from "../common/on_abort.ts";

const log = getLogger(["upcase", "server"]);

/** A running server, as returned by {@linkcode serve}. */
export interface UpcaseServer<
  A extends Deno.NetAddr | Deno.UnixAddr = Deno.NetAddr | Deno.UnixAddr,
> extends AsyncDisposable {
  /** The address the server listens on, with the real port or the absolute path. */
  readonly addr: A;
  /** The settings it runs with. */
  readonly settings: Readonly<ServerSettings>;
  /** Its open connections and its totals since it started. */
  stats(): StatsSnapshot;
  /** Settles when the server has stopped: after a shutdown, or a fatal accept error. */
  readonly finished: Promise<DrainSummary>;
  /** How many connections are open now. */
  readonly activeConnections: number;
  /** True from the start of a shutdown on: the server no longer accepts. */
  readonly draining: boolean;
  /**
   * Stops accepting, lets open connections finish until the drain timeout,
   * then closes the rest. Calling it again returns the same promise.
   */
  shutdown(): Promise<DrainSummary>;
  /**
   * Serves new connections with another certificate; open connections keep
   * the session they have. The pair is checked first, and a bad one leaves
   * the old certificate in place. The listener is closed and reopened on the
   * same address for the swap, so for a fraction of a millisecond new
   * clients are refused, and those queued but not yet accepted are reset.
   * Reloads run one after another.
   *
   * @param pem The new certificate chain and key.
   * @throws {TypeError} when the server does not use TLS, is shutting down,
   * or the pair is not a valid certificate and its key; or the listener's own
   * error when Deno still refuses the pair, in which case the old one stays.
   */
  reloadTls(pem: TlsPem): Promise<void>;
}

/**
 * Starts an upcase server: every connection is its own task, and whatever a
 * client sends comes back uppercased. It listens on TCP, on TCP with TLS
 * (`cert` and `key`), or on a Unix socket (`path`), before it returns, so a
 * port in use, a bad certificate or a missing permission throws here.
 *
 * @param options Where to listen, how to uppercase, the limits, and how to shut down.
 * @returns the running server.
 *
 * @example Serve on a free port and shut down
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { serve } from "./serve.ts";
 *
 * await using server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite();
 * assertEquals(await new Response(conn.readable).text(), "HELLO");
 * ```
 */
export function serve(options: ServeUnixOptions): UpcaseServer<Deno.UnixAddr>;
export function serve(options?: ServeOptions): UpcaseServer<Deno.NetAddr>;
export function serve(
  options: ServeOptions | ServeUnixOptions = {},
): UpcaseServer {
  const resolved = resolveServeOptions(options);
  if (resolved.transport !== "deno") {
    throw new TypeError(
      `serve() listens with Deno.listen; use startServer() for transport "${resolved.transport}"`,
    );
  }
  return run(resolved, listen(resolved.target), options);
}

/**
 * Starts an upcase server as {@linkcode serve} does, on either transport:
 * `deno` (`Deno.listen`, the default) or `node` (Deno's `node:net` engine,
 * whose listen completes asynchronously). It resolves once the server
 * listens, and rejects if it cannot.
 *
 * @param options As for `serve()`, and `transport`.
 * @returns the running server.
 *
 * @example Serve on the node engine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startServer } from "./serve.ts";
 *
 * await using server = await startServer({ transport: "node", hostname: "127.0.0.1", port: 0, onListen() {} });
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite();
 * assertEquals(await new Response(conn.readable).text(), "HELLO");
 * assertEquals(server.settings.transport, "node");
 * ```
 */
export function startServer(
  options: ServeUnixOptions,
): Promise<UpcaseServer<Deno.UnixAddr>>;
export function startServer(
  options?: ServeOptions,
): Promise<UpcaseServer<Deno.NetAddr>>;
export async function startServer(
  options: ServeOptions | ServeUnixOptions = {},
): Promise<UpcaseServer> {
  const resolved = resolveServeOptions(options);
  const listener = resolved.transport === "node"
    ? await listenNode(resolved.target)
    : listen(resolved.target);
  return run(resolved, listener, options);
}

function run(
  resolved: ResolvedServeOptions,
  listener: Listener,
  options: ServeOptions | ServeUnixOptions,
): UpcaseServer {
  const server = new Server(resolved, { listener, ...options });
  onAbort(options.signal, () => void server.shutdown());
  announce(server.addr, resolved, options.onListen);
  return server;
}

// The TLS mark goes after the address, so that whoever reads "listening on
// HOST:PORT" (the tests, the benchmark) still finds it.
function announce(
  addr: Deno.NetAddr | Deno.UnixAddr,
  resolved: ResolvedServeOptions,
  onListen: ((addr: never) => void) | undefined,
): void {
  if (onListen) return (onListen as (a: Deno.Addr) => void)(addr);
  const { transport } = resolved.target;
  log.info(
    transport === "tls"
      ? "listening on {address} (TLS)"
      : "listening on {address}",
    { address: formatAddr(addr), transport },
  );
}

/** What a {@linkcode Server} runs on, besides its settings. */
interface ServerParts {
  listener: Listener;
  sharedLimits?: SharedLimits | undefined;
  onAcceptError?: ServeOptions["onAcceptError"];
}

// The running server: its listener, its connections and who it admits, in
// the manner of Go's http.Server, with the lifecycle in small methods.
class Server implements UpcaseServer {
  readonly addr: Deno.NetAddr | Deno.UnixAddr;
  readonly settings: Readonly<ServerSettings>;
  readonly finished: Promise<DrainSummary>;
  readonly #options: ResolvedServeOptions;
  readonly #parts: ServerParts;
  readonly #closing = new AbortController();
  readonly #stats = new ServerStats();
  // In the server rather than a transport, so that it covers every one.
  readonly #lag = new LoopLag({ logger: log });
  readonly #connections: Connections;
  readonly #admission: AdmissionControl;
  readonly #loop: Promise<void>;
  #nextId = 1;
  #shutdown: Promise<DrainSummary> | undefined;
  #reloads = Promise.resolve();

  constructor(options: ResolvedServeOptions, parts: ServerParts) {
    this.settings = serverSettings(options);
    this.#options = options;
    this.#parts = parts;
    this.addr = parts.listener.addr;
    const stats = this.#stats;
    stats.lag = this.#lag;
    this.#lag.start();
    const { sharedLimits } = parts;
    this.#connections = new Connections({
      // The whole server's limit, with --workers, is the shared limits'.
      maxConnections: sharedLimits ? 0 : options.maxConnections,
      idleTimeout: options.idleTimeout,
      ipv6Prefix: options.ipv6Prefix,
      stats,
    });
    this.#admission = new AdmissionControl({ ...options, sharedLimits, stats });
    this.#loop = acceptLoop(parts.listener, {
      signal: this.#closing.signal,
      onConnection: (conn) => this.#accepted(conn),
      waitForCapacity: () =>
        sharedLimits
          ? sharedLimits.waitForCapacity()
          : this.#connections.waitForCapacity(this.#closing.signal),
      onAcceptError: (kind, err) => {
        stats.acceptFailed(err);
        parts.onAcceptError?.(kind, err);
      },
    });
    this.finished = this.#loop.then(
      () => this.shutdown(),
      async (err) => {
        await this.shutdown();
        throw err;
      },
    );
    // A caller that never looks at `finished` must not crash the process.
    this.finished.catch(() => {});
  }

  get activeConnections(): number {
    return this.#connections.size;
  }

  get draining(): boolean {
    return this.#closing.signal.aborted;
  }

  stats(): StatsSnapshot {
    return this.#stats.snapshot(this.#connections.live());
  }

  shutdown(): Promise<DrainSummary> {
    this.#shutdown ??= this.#drain();
    return this.#shutdown;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown().then(() => {});
  }

  reloadTls(pem: TlsPem): Promise<void> {
    const reload = this.#reloads.then(() => this.#reloadTls(pem));
    this.#reloads = reload.catch(() => {});
    return reload;
  }

  // Every connection the listener hands over counts, whatever happens to it
  // next, so that accepted = open + waiting + closed + refused + rejected.
  #accepted(conn: Conn): void {
    this.#stats.accepted();
    const check = this.#admission.check(conn);
    if (check.untrusted) return this.#admission.rejectUntrusted(conn);
    const { counted, admission } = check;
    if (typeof admission === "string") this.#admitted(conn, counted, admission);
    else this.#holdUntilAdmitted(conn, counted, admission);
  }

  // The whole server's limits answer later (see SharedLimits); until then
  // the client waits unread, as it would in the backlog.
  #holdUntilAdmitted(
    conn: Conn,
    counted: string | undefined,
    admission: Promise<Admission>,
  ): void {
    this.#connections.hold(conn);
    void admission.then((answer) => {
      const since = this.#connections.unhold(conn);
      const drop = since === undefined || answer === "closed" || this.draining;
      if (drop && answer === "admitted") this.#admission.release(counted);
      // Gone: the drain closed it meanwhile.
      if (since === undefined) return;
      if (drop) return this.#connections.closeWaiting(conn, since);
      this.#admitted(conn, counted, answer);
    });
  }

  #admitted(
    conn: Conn,
    counted: string | undefined,
    admission: Admission,
  ): void {
    if (admission === "refused") return this.#admission.refuse(conn);
    if (admission === "closed") {
      return this.#connections.closeWaiting(conn, performance.now());
    }
    // The key whose per-address slot this connection holds.
    let holds = counted;
    const { unicode, handshakeTimeout, proxyProtocol } = this.#options;
    const id = this.#nextId++;
    const task: ConnectionTask = new ConnectionTask(conn, {
      id,
      unicode,
      handshakeTimeout,
      ...(proxyProtocol
        ? {
          proxy: {
            admit: (host: string | undefined) =>
              this.#admitRealClient(host, task, (key) => holds = key),
          },
        }
        : {}),
    });
    this.#connections.track(task, (result) => {
      if (result.outcome === "served") {
        const seconds = (performance.now() - task.startedAt) / 1000;
        this.#stats.closed(result, seconds);
      } else if (result.reason !== "refused") {
        this.#stats.proxyRejected(result.reason);
      }
      this.#admission.release(holds);
    });
  }

  // Once a PROXY header has named the real client, its per-address slot.
  #admitRealClient(
    host: string | undefined,
    task: ConnectionTask,
    holds: (key: string) => void,
  ): boolean | Promise<boolean> {
    const key = host === undefined ? undefined : this.#admission.keyOf(host);
    if (key === undefined) return true;
    const settle = (ok: boolean) => {
      if (ok) holds(key);
      else this.#admission.countRefusal(task.peer);
      return ok;
    };
    const ok = this.#admission.acquireAddress(key);
    return typeof ok === "boolean" ? settle(ok) : ok.then(settle);
  }

  async #drain(): Promise<DrainSummary> {
    this.#closing.abort();
    this.#stats.draining = true;
    try {
      this.#parts.listener.close();
    } catch {
      // Already closed.
    }
    await this.#loop.catch(() => {});
    const summary = await this.#connections.drain(this.#options.drainTimeout);
    this.#lag[Symbol.dispose]();
    log.info("shutdown complete: {drained} drained, {cut} cut", { ...summary });
    return summary;
  }

  async #reloadTls(pem: TlsPem): Promise<void> {
    const listener = this.#parts.listener;
    if (!listener.reloadTls) {
      throw new TypeError(
        "Cannot reload TLS: the server was started without cert and key",
      );
    }
    if (this.draining) {
      throw new TypeError("Cannot reload TLS: the server is shutting down");
    }
    const { subject, validTo } = checkTlsPem(pem);
    const closedMs = await listener.reloadTls(pem);
    log.info(
      "reloaded the TLS certificate ({subject}, valid until {validTo}); the port was closed for {closedMs} ms; {open} open connections keep their sessions",
      {
        subject,
        validTo: validTo.toISOString(),
        closedMs: Math.round(closedMs * 1000) / 1000,
        open: this.#connections.size,
      },
    );
  }
}
