import { getLogger } from "@logtape/logtape";
import { type AcceptErrorKind, acceptLoop } from "./accept_loop.ts";
import { AddressLimit } from "./address_limit.ts";
import { ConnectionTask } from "./connection_task.ts";
import { formatAddr } from "./format_addr.ts";
import { IdleSweeper } from "./idle_sweeper.ts";
import { ServerStats, type StatsSnapshot } from "./server_stats.ts";

const log = getLogger(["upcase", "server"]);

/** Options for {@linkcode serve}, in the shape of `Deno.serve`'s. */
export interface ServeOptions {
  /**
   * The address to listen on.
   *
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The port to listen on; 0 picks a free one.
   *
   * @default {8000}
   */
  port?: number;
  /** Aborting it shuts the server down, as {@linkcode UpcaseServer.shutdown} does. */
  signal?: AbortSignal;
  /** Called once the server listens; by default it logs the address. */
  onListen?: (addr: Deno.NetAddr) => void;
  /**
   * Uppercase with full Unicode case rules instead of ASCII only.
   *
   * @default {false}
   */
  unicode?: boolean;
  /**
   * How long a shutdown waits for open connections, in milliseconds, before
   * it cuts them.
   *
   * @default {10000}
   */
  drainTimeout?: number;
  /**
   * Most connections open at once; at the limit the server stops accepting
   * until one closes, and new clients wait in the kernel's backlog. 0 means
   * no limit.
   *
   * @default {0}
   */
  maxConnections?: number;
  /**
   * Most connections open at once from one client address; more are closed
   * as soon as they are accepted. 0 means no limit.
   *
   * @default {0}
   */
  maxConnectionsPerIp?: number;
  /**
   * Milliseconds without a byte in either direction before a connection is
   * closed; 0 turns the timeout off.
   *
   * @default {300000}
   */
  idleTimeout?: number;
  /** Called for every failed accept, with how it was handled. */
  onAcceptError?: (kind: AcceptErrorKind, err: unknown) => void;
}

/** How a shutdown went. */
export interface DrainSummary {
  /** Connections that were open at shutdown and finished by themselves. */
  drained: number;
  /** Connections still open at the drain timeout, which were closed. */
  cut: number;
}

/** The settings a server runs with, for the status page. */
export interface ServerSettings {
  /** Full Unicode uppercasing instead of ASCII. */
  unicode: boolean;
  /** Milliseconds a shutdown waits for open connections. */
  drainTimeout: number;
  /** Most connections open at once (0: no limit). */
  maxConnections: number;
  /** Most connections open at once per address (0: no limit). */
  maxConnectionsPerIp: number;
  /** Milliseconds without traffic before a connection is closed (0: never). */
  idleTimeout: number;
}

/** A running server, as returned by {@linkcode serve}. */
export interface UpcaseServer extends AsyncDisposable {
  /** The address the server listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** The settings it runs with. */
  readonly settings: Readonly<ServerSettings>;
  /** Its open connections and its totals since it started. */
  stats(): StatsSnapshot;
  /** Settles when the server has stopped: after a shutdown, or a fatal accept error. */
  readonly finished: Promise<DrainSummary>;
  /** How many connections are open now. */
  readonly activeConnections: number;
  /**
   * Stops accepting, lets open connections finish until the drain timeout,
   * then closes the rest. Calling it again returns the same promise.
   */
  shutdown(): Promise<DrainSummary>;
}

// Refusals over the per-address limit are logged at most this often.
const REFUSAL_LOG_INTERVAL_MS = 1000;

/**
 * Starts an upcase server: every connection is its own task, and whatever a
 * client sends comes back uppercased. It listens before it returns, so a
 * port in use or a missing permission throws here.
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
export function serve(options: ServeOptions = {}): UpcaseServer {
  const {
    hostname = "0.0.0.0",
    port = 8000,
    signal,
    unicode = false,
    drainTimeout = 10_000,
    maxConnections = 0,
    maxConnectionsPerIp = 0,
    idleTimeout = 300_000,
    onAcceptError,
  } = options;
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const addr = listener.addr;
  const closing = new AbortController();
  const active = new Map<number, ConnectionTask>();
  const perAddress = new AddressLimit(maxConnectionsPerIp);
  const sweeper = idleTimeout > 0 ? new IdleSweeper(idleTimeout) : undefined;
  sweeper?.start();
  let nextId = 1;
  let slotFreed: PromiseWithResolvers<void> | undefined;
  let refused = 0;
  let refusalLoggedAt = -Infinity;
  const stats = new ServerStats();

  function refuse(conn: Deno.TcpConn): void {
    const peer = formatAddr(conn.remoteAddr);
    try {
      conn.close();
    } catch {
      // Nothing to release.
    }
    refused++;
    stats.refused++;
    const now = performance.now();
    if (now - refusalLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    log.warning(
      "refused {refused} connections over the limit of {limit} per address (latest from {peer})",
      { refused, limit: maxConnectionsPerIp, peer },
    );
    refused = 0;
    refusalLoggedAt = now;
  }

  function handle(conn: Deno.TcpConn): void {
    const host = conn.remoteAddr.hostname;
    if (!perAddress.acquire(host)) return refuse(conn);
    const task = new ConnectionTask(conn, { id: nextId++, unicode });
    stats.accepted();
    active.set(task.id, task);
    sweeper?.add(task);
    task.done.then((result) => {
      stats.closed(result, (performance.now() - task.startedAt) / 1000);
      active.delete(task.id);
      sweeper?.delete(task);
      perAddress.release(host);
      slotFreed?.resolve();
      slotFreed = undefined;
    });
  }

  function waitForCapacity(): Promise<void> | undefined {
    if (maxConnections === 0 || active.size < maxConnections) return undefined;
    log.warning(
      "connection limit of {limit} reached; accepting again when one closes",
      {
        limit: maxConnections,
      },
    );
    slotFreed = Promise.withResolvers();
    stats.paused = true;
    return slotFreed.promise.then(() => {
      stats.paused = false;
      if (!closing.signal.aborted) {
        log.info("a connection closed; accepting again");
      }
    });
  }

  const loop = acceptLoop(listener, {
    signal: closing.signal,
    onConnection: handle,
    waitForCapacity,
    onAcceptError(kind, err) {
      stats.acceptFailed(err);
      onAcceptError?.(kind, err);
    },
  });

  let shutdownPromise: Promise<DrainSummary> | undefined;
  function shutdown(): Promise<DrainSummary> {
    shutdownPromise ??= drain();
    return shutdownPromise;
  }

  async function drain(): Promise<DrainSummary> {
    closing.abort();
    stats.draining = true;
    try {
      listener.close();
    } catch {
      // Already closed.
    }
    await loop.catch(() => {});
    const open = [...active.values()];
    log.info(
      "shutting down: no longer accepting; draining {open} connections for up to {seconds} s",
      { open: open.length, seconds: drainTimeout / 1000 },
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), drainTimeout);
    });
    const all = Promise.all(open.map((t) => t.done));
    const outcome = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    let cut = 0;
    if (outcome === "timeout") {
      const left = [...active.values()];
      cut = left.length;
      for (const t of left) t.cut("shutdown");
      await Promise.all(left.map((t) => t.done));
    }
    sweeper?.stop();
    const summary = { drained: open.length - cut, cut };
    log.info("shutdown complete: {drained} drained, {cut} cut", summary);
    return summary;
  }

  const finished = loop.then(
    () => shutdown(),
    async (err) => {
      await shutdown();
      throw err;
    },
  );
  // A caller that never looks at `finished` must not crash the process.
  finished.catch(() => {});

  if (signal) {
    if (signal.aborted) void shutdown();
    else {signal.addEventListener("abort", () => void shutdown(), {
        once: true,
      });}
  }
  (options.onListen ??
    ((a) => log.info("listening on {address}", { address: formatAddr(a) })))(
      addr,
    );

  return {
    addr,
    settings: {
      unicode,
      drainTimeout,
      maxConnections,
      maxConnectionsPerIp,
      idleTimeout,
    },
    stats: () => stats.snapshot(active.values()),
    finished,
    get activeConnections() {
      return active.size;
    },
    shutdown,
    [Symbol.asyncDispose]: () => shutdown().then(() => {}),
  };
}
