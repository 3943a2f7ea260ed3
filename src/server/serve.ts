import { getLogger } from "@logtape/logtape";
import { type AcceptErrorKind, acceptLoop } from "./accept_loop.ts";
import { AddressLimit } from "./address_limit.ts";
import { CidrSet } from "../proxy/cidr.ts";
import { ConnectionTask } from "../connection/task.ts";
import { formatAddr } from "../common/format_addr.ts";
import { IdleSweeper } from "./idle_sweeper.ts";
import { clientKey } from "../proxy/ip_address.ts";
import { LimitLog } from "./limit_log.ts";
import { listen } from "../transport/deno/listen.ts";
import { setLongTimeout } from "../common/long_timeout.ts";
import { ServerStats, type StatsSnapshot } from "./stats.ts";
import type { Admission, SharedLimits } from "./shared_limits.ts";
import { checkTlsPem, type TlsPem } from "../tls/pem.ts";
import type { Conn, ListenTarget } from "../transport/types.ts";

const log = getLogger(["upcase", "server"]);

/** Options for {@linkcode serve} that every transport shares. */
export interface ServeCommonOptions {
  /** Aborting it shuts the server down, as {@linkcode UpcaseServer.shutdown} does. */
  signal?: AbortSignal;
  /**
   * Uppercase with full Unicode case rules instead of ASCII only.
   *
   * @default {false}
   */
  unicode?: boolean;
  /**
   * How long a shutdown waits for open connections, in milliseconds, before
   * it cuts them; any length, `Infinity` included, is waited out.
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
   * For `maxConnectionsPerIp`, how many leading bits of an IPv6 address
   * name one client: a subscriber usually holds a whole /64 and can use any
   * address in it. IPv4 clients count one address each.
   *
   * @default {64}
   */
  ipv6Prefix?: number;
  /**
   * Milliseconds without a byte in either direction before a connection is
   * closed; 0 turns the timeout off.
   *
   * @default {300000}
   */
  idleTimeout?: number;
  /**
   * Expect a PROXY protocol header (v1 or v2) at the start of every
   * connection, as a load balancer such as HAProxy sends with
   * `send-proxy-v2`, and serve the client it names: logs, the status page
   * and `maxConnectionsPerIp` use that address. A connection from a source
   * outside `proxyTrusted` is closed at once; one whose header is malformed,
   * cut short or later than `handshakeTimeout` is closed too. Both are
   * counted in `stats().proxyRejected`. Not with TLS: the header comes
   * before the handshake, which Deno's TLS listener runs itself. Unix socket
   * clients are trusted, since the socket file's permissions already decide
   * who may connect.
   *
   * @default {false}
   */
  proxyProtocol?: boolean;
  /**
   * The sources allowed to send a PROXY header.
   *
   * @default {CidrSet.parse("127.0.0.0/8,::1/128")}
   */
  proxyTrusted?: CidrSet;
  /**
   * Milliseconds a new connection has to finish its TLS handshake, or to
   * send its whole PROXY header, whatever the idle timeout; a client that
   * is late is closed (`handshake_timeout`, or a PROXY rejection with the
   * reason `timeout`). Any length is waited out; 0 turns the deadline off.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
  /** Called for every failed accept, with how it was handled. */
  onAcceptError?: (kind: AcceptErrorKind, err: unknown) => void;
  /**
   * Limits kept for several processes that serve one port, as the workers
   * of `--workers` do: `maxConnections` and `maxConnectionsPerIp` are then
   * the whole server's, and these apply them instead of this server. A
   * connection waits, accepted but unread, until they admit it.
   */
  sharedLimits?: SharedLimits;
}

/**
 * Options for {@linkcode serve} over TCP, with TLS when `cert` and `key` are
 * given, in the shape of `Deno.serve`'s.
 */
export interface ServeOptions extends ServeCommonOptions {
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
  /**
   * A PEM certificate chain: with `key`, clients must speak TLS. The
   * handshake runs in each connection's own task, so a client that fails it
   * affects only itself. {@linkcode UpcaseServer.reloadTls} replaces it.
   */
  cert?: string;
  /** The PEM private key of `cert`. */
  key?: string;
  /**
   * Share the port with other processes (SO_REUSEPORT, Linux; Deno 2.9 needs
   * `--unstable-net`), for `--workers`.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /** Called once the server listens; by default it logs the address. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/**
 * Options for {@linkcode serve} on a Unix socket, in the shape of
 * `Deno.serve`'s. Unix clients have no address of their own, so
 * `maxConnectionsPerIp` does not apply; `maxConnections` does.
 */
export interface ServeUnixOptions extends ServeCommonOptions {
  /** The socket's path. Closing the server removes the file. */
  path: string;
  /** Called once the server listens; by default it logs the path. */
  onListen?: (addr: Deno.UnixAddr) => void;
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
  /** Milliseconds for the TLS handshake or PROXY header (0: no deadline). */
  handshakeTimeout: number;
}

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

// Refusals over the per-address limit, and connections from sources not
// trusted to send a PROXY header, are logged at most this often.
const REFUSAL_LOG_INTERVAL_MS = 1000;

const DEFAULT_PROXY_TRUSTED = CidrSet.parse("127.0.0.0/8,::1/128");

// This server's own per-address limit, in the shape of the shared one; its
// own maxConnections pauses the accept loop instead.
function addressLimits(
  max: number,
): Pick<SharedLimits, "acquire" | "acquireAddress" | "release"> {
  const perAddress = new AddressLimit(max);
  return {
    acquire: (host) =>
      host === undefined || perAddress.acquire(host) ? "admitted" : "refused",
    acquireAddress: (host) => perAddress.acquire(host),
    release(host) {
      if (host !== undefined) perAddress.release(host);
    },
  };
}

function listenTarget(options: ServeOptions | ServeUnixOptions): ListenTarget {
  if ("path" in options) {
    if ("cert" in options || "key" in options) {
      throw new TypeError(
        "Cannot serve TLS on a Unix socket: give either path, or cert and key",
      );
    }
    return { transport: "unix", path: options.path };
  }
  const { hostname = "0.0.0.0", port = 8000, cert, key } = options;
  const reusePort = options.reusePort === true;
  if (cert === undefined && key === undefined) {
    return { transport: "tcp", hostname, port, reusePort };
  }
  if (cert === undefined || key === undefined) {
    throw new TypeError(
      `Cannot serve TLS with only ${
        cert === undefined ? "key" : "cert"
      }: give both cert and key`,
    );
  }
  return { transport: "tls", hostname, port, pem: { cert, key }, reusePort };
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
  const {
    signal,
    unicode = false,
    drainTimeout = 10_000,
    maxConnections = 0,
    maxConnectionsPerIp = 0,
    ipv6Prefix = 64,
    idleTimeout = 300_000,
    proxyProtocol = false,
    proxyTrusted = DEFAULT_PROXY_TRUSTED,
    handshakeTimeout = 10_000,
    onAcceptError,
    sharedLimits,
  } = options;
  const target = listenTarget(options);
  if (proxyProtocol && target.transport === "tls") {
    throw new TypeError(
      "Cannot read PROXY headers on a TLS port: give either proxyProtocol, or cert and key",
    );
  }
  const listener = listen(target);
  const addr = listener.addr;
  const closing = new AbortController();
  const active = new Map<number, ConnectionTask>();
  const limits = sharedLimits ?? addressLimits(maxConnectionsPerIp);
  // Accepted connections waiting for sharedLimits, and since when.
  const waiting = new Map<Conn, number>();
  const sweeper = idleTimeout > 0 ? new IdleSweeper(idleTimeout) : undefined;
  sweeper?.start();
  let nextId = 1;
  let slotFreed: PromiseWithResolvers<void> | undefined;
  const limitLog = new LimitLog({ logger: log, limit: maxConnections });
  // The key a per-address slot is counted under; none without that limit,
  // so that the default path parses no address.
  const keyOf = maxConnectionsPerIp > 0
    ? (host: string) => clientKey(host, ipv6Prefix)
    : () => undefined;
  let refused = 0;
  let refusalLoggedAt = -Infinity;
  const stats = new ServerStats();

  let untrusted = 0;
  let untrustedLoggedAt = -Infinity;

  function closeQuietly(conn: Conn): void {
    try {
      conn.close();
    } catch {
      // Nothing to release.
    }
  }

  // Closed before anything is read: an untrusted source's header, true or
  // not, must not decide which address the server believes.
  function rejectUntrusted(conn: Conn): void {
    const peer = formatAddr(conn.remoteAddr);
    closeQuietly(conn);
    untrusted++;
    stats.proxyRejected("untrusted");
    const now = performance.now();
    if (now - untrustedLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    log.warning(
      "rejected {untrusted} connections from sources not trusted to send a PROXY header (latest from {peer})",
      { untrusted, peer },
    );
    untrusted = 0;
    untrustedLoggedAt = now;
  }

  function refuse(conn: Conn): void {
    const peer = formatAddr(conn.remoteAddr);
    closeQuietly(conn);
    countRefusal(peer);
  }

  function countRefusal(peer: string): void {
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

  function handle(conn: Conn): void {
    // Every connection the listener hands over counts, whatever happens to
    // it next, so that accepted = open + waiting + closed + refused +
    // rejected.
    stats.accepted();
    // Unix peers have no address to count by.
    const remote = conn.remoteAddr;
    const host = "hostname" in remote ? remote.hostname : undefined;
    if (proxyProtocol && host !== undefined && !proxyTrusted.has(host)) {
      return rejectUntrusted(conn);
    }
    // Behind a balancer the per-address limit waits for the real address,
    // which the connection's own task reads, so a slow header never holds
    // up accept.
    const counted = proxyProtocol || host === undefined
      ? undefined
      : keyOf(host);
    const admission = limits.acquire(counted);
    if (typeof admission === "string") admitted(conn, counted, admission);
    else holdUntilAdmitted(conn, counted, admission);
  }

  // The whole server's limits answer later (see SharedLimits); until then
  // the client waits unread, as it would in the backlog.
  function holdUntilAdmitted(
    conn: Conn,
    counted: string | undefined,
    admission: Promise<Admission>,
  ): void {
    waiting.set(conn, performance.now());
    stats.waiting = waiting.size;
    void admission.then((answer) => {
      const since = waiting.get(conn);
      // Gone: the drain closed it meanwhile.
      if (since === undefined) {
        if (answer === "admitted") limits.release(counted);
        return;
      }
      waiting.delete(conn);
      stats.waiting = waiting.size;
      if (answer === "closed" || closing.signal.aborted) {
        if (answer === "admitted") limits.release(counted);
        return closeWaiting(conn, since);
      }
      admitted(conn, counted, answer);
    });
  }

  // Closed unserved at shutdown, like a client in the backlog when the
  // listener closes: counted as closed, with the reason `shutdown`.
  function closeWaiting(conn: Conn, since: number): void {
    closeQuietly(conn);
    const seconds = (performance.now() - since) / 1000;
    stats.closed({ bytesIn: 0, bytesOut: 0, reason: "shutdown" }, seconds);
  }

  function admitted(
    conn: Conn,
    counted: string | undefined,
    admission: Admission,
  ): void {
    if (admission === "refused") return refuse(conn);
    if (admission === "closed") return closeWaiting(conn, performance.now());
    // The host whose per-address slot this connection holds.
    let holds = counted;
    const id = nextId++;
    const task = new ConnectionTask(
      conn,
      proxyProtocol
        ? {
          id,
          unicode,
          handshakeTimeout,
          proxy: {
            admit(host) {
              const real = host === undefined ? undefined : keyOf(host);
              if (real === undefined) return true;
              const settle = (ok: boolean) => {
                if (ok) holds = real;
                else countRefusal(task.peer);
                return ok;
              };
              const ok = limits.acquireAddress(real);
              return typeof ok === "boolean" ? settle(ok) : ok.then(settle);
            },
          },
        }
        : { id, unicode, handshakeTimeout },
    );
    active.set(task.id, task);
    sweeper?.add(task);
    task.done.then((result) => {
      if (result.rejected === undefined) {
        stats.closed(result, (performance.now() - task.startedAt) / 1000);
      } else if (result.rejected !== "refused") {
        stats.proxyRejected(result.rejected);
      }
      active.delete(task.id);
      sweeper?.delete(task);
      limits.release(holds);
      slotFreed?.resolve();
      slotFreed = undefined;
    });
  }

  function waitForCapacity(): Promise<void> | undefined {
    if (sharedLimits) return sharedLimits.waitForCapacity();
    if (maxConnections === 0 || active.size < maxConnections) return undefined;
    limitLog.reached(limitLog.pauses === 0 ? busiestClient() : undefined);
    slotFreed = Promise.withResolvers();
    stats.paused = true;
    return slotFreed.promise.then(() => {
      stats.paused = false;
      if (!closing.signal.aborted) limitLog.freed();
    });
  }

  // Who fills the slots, for the limit's warning: the client (an IPv6 /64
  // as one) with the most open connections. Once per episode, so the scan
  // costs nothing under churn.
  function busiestClient(): string {
    const counts = new Map<string, number>();
    let top = "";
    let most = 0;
    for (const task of active.values()) {
      const key = task.peerHost === "unix"
        ? "unix"
        : clientKey(task.peerHost, ipv6Prefix);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n > most) [top, most] = [key, n];
    }
    return `${top} with ${most} of ${active.size}`;
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
    for (const [conn, since] of waiting) closeWaiting(conn, since);
    waiting.clear();
    stats.waiting = 0;
    const open = [...active.values()];
    log.info(
      "shutting down: no longer accepting; draining {open} connections for up to {seconds} s",
      { open: open.length, seconds: drainTimeout / 1000 },
    );
    let cancelTimer = () => {};
    const timedOut = new Promise<"timeout">((resolve) => {
      cancelTimer = setLongTimeout(() => resolve("timeout"), drainTimeout);
    });
    const all = Promise.all(open.map((t) => t.done));
    const outcome = await Promise.race([all, timedOut]);
    cancelTimer();
    let cut = 0;
    if (outcome === "timeout") {
      const left = [...active.values()];
      cut = left.length;
      for (const t of left) t.cut("shutdown");
      await Promise.all(left.map((t) => t.done));
    }
    sweeper?.stop();
    limitLog[Symbol.dispose]();
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
  if (options.onListen) (options.onListen as (a: Deno.Addr) => void)(addr);
  else if (target.transport === "tls") {
    // The TLS mark goes after the address, so that whoever reads
    // "listening on HOST:PORT" (the tests, the benchmark) still finds it.
    log.info("listening on {address} (TLS)", {
      address: formatAddr(addr),
      transport: "tls",
    });
  } else {
    log.info("listening on {address}", {
      address: formatAddr(addr),
      transport: target.transport,
    });
  }

  let reloads = Promise.resolve();
  function reloadTls(pem: TlsPem): Promise<void> {
    const reload = reloads.then(async () => {
      if (!listener.reloadTls) {
        throw new TypeError(
          "Cannot reload TLS: the server was started without cert and key",
        );
      }
      if (closing.signal.aborted) {
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
          open: active.size,
        },
      );
    });
    reloads = reload.catch(() => {});
    return reload;
  }

  return {
    addr,
    settings: {
      unicode,
      drainTimeout,
      maxConnections,
      maxConnectionsPerIp,
      idleTimeout,
      handshakeTimeout,
    },
    stats: () => stats.snapshot(active.values()),
    finished,
    get activeConnections() {
      return active.size;
    },
    get draining() {
      return closing.signal.aborted;
    },
    shutdown,
    reloadTls,
    [Symbol.asyncDispose]: () => shutdown().then(() => {}),
  };
}
