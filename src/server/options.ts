import type { AcceptErrorKind } from "./accept_loop.ts";
import { CidrSet } from "../proxy/cidr.ts";
import type { SharedLimits } from "./shared_limits.ts";
import type { ListenTarget } from "../transport/types.ts";

/** Options for {@linkcode serve} that every transport shares. */
export interface ServeCommonOptions {
  /** Aborting it shuts the server down, as `UpcaseServer.shutdown` does. */
  signal?: AbortSignal;
  /**
   * The socket engine: `deno` is `Deno.listen` and `Deno.Conn`; `node` is
   * Deno's `node:net` engine, which reads on readiness and stays fair when
   * the server has more ready work than it can run. `serve()` takes `deno`
   * only; {@linkcode startServer} takes either.
   *
   * @default {"deno"}
   */
  transport?: Transport;
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
   * affects only itself. `UpcaseServer.reloadTls` replaces it.
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

/** The socket engines a server can run on. */
export const TRANSPORTS = ["deno", "node"] as const;

/** One of {@linkcode TRANSPORTS}. */
export type Transport = typeof TRANSPORTS[number];

/** The settings a server runs with, for the status page. */
export interface ServerSettings {
  /** The socket engine. */
  transport: Transport;
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

/**
 * The defaults of {@linkcode ServeCommonOptions}, in one place: `serve()`
 * applies them, and the command's option table shows them (in seconds
 * where the command takes seconds).
 */
export const SERVE_DEFAULTS = {
  transport: "deno",
  unicode: false,
  drainTimeout: 10_000,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  ipv6Prefix: 64,
  idleTimeout: 300_000,
  proxyProtocol: false,
  proxyTrusted: "127.0.0.0/8,::1/128",
  handshakeTimeout: 10_000,
  hostname: "0.0.0.0",
  port: 8000,
} as const;

/** The options `serve()` runs with, defaults applied. */
export interface ResolvedServeOptions extends ServerSettings {
  /** Where and how to listen. */
  target: ListenTarget;
  /** Whether a PROXY header comes first. */
  proxyProtocol: boolean;
  /** Who may send one. */
  proxyTrusted: CidrSet;
  /** For `maxConnectionsPerIp`, the bits of an IPv6 address that name a client. */
  ipv6Prefix: number;
}

/**
 * The settings a server reports, picked from its options.
 *
 * @param options The resolved options.
 * @returns the seven settings, and nothing else.
 */
export function serverSettings(options: ServerSettings): ServerSettings {
  const {
    transport,
    unicode,
    drainTimeout,
    maxConnections,
    maxConnectionsPerIp,
    idleTimeout,
    handshakeTimeout,
  } = options;
  return {
    transport,
    unicode,
    drainTimeout,
    maxConnections,
    maxConnectionsPerIp,
    idleTimeout,
    handshakeTimeout,
  };
}

const DEFAULT_PROXY_TRUSTED = CidrSet.parse(SERVE_DEFAULTS.proxyTrusted);

/**
 * Applies the defaults and checks the combinations that cannot work.
 *
 * @param options What the caller gave `serve()`.
 * @returns the settings, the listen target and the PROXY options.
 * @throws {TypeError} for TLS on a Unix socket, half a certificate pair, or
 * PROXY headers on a TLS port.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { resolveServeOptions } from "./options.ts";
 *
 * assertEquals(resolveServeOptions({ port: 0 }).target, {
 *   transport: "tcp", hostname: "0.0.0.0", port: 0, reusePort: false,
 * });
 * assertThrows(() => resolveServeOptions({ cert: "x" }), TypeError);
 * ```
 */
export function resolveServeOptions(
  options: ServeOptions | ServeUnixOptions,
): ResolvedServeOptions {
  const d = SERVE_DEFAULTS;
  const target = listenTarget(options);
  const proxyProtocol = options.proxyProtocol ?? d.proxyProtocol;
  if (proxyProtocol && target.transport === "tls") {
    throw new TypeError(
      "Cannot read PROXY headers on a TLS port: give either proxyProtocol, or cert and key",
    );
  }
  const transport = options.transport ?? d.transport;
  if (!(TRANSPORTS as readonly string[]).includes(transport)) {
    throw new TypeError(
      `Unknown transport "${transport}": give ${TRANSPORTS.join(" or ")}`,
    );
  }
  return {
    target,
    transport,
    unicode: options.unicode ?? d.unicode,
    drainTimeout: options.drainTimeout ?? d.drainTimeout,
    maxConnections: options.maxConnections ?? d.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? d.maxConnectionsPerIp,
    ipv6Prefix: options.ipv6Prefix ?? d.ipv6Prefix,
    idleTimeout: options.idleTimeout ?? d.idleTimeout,
    handshakeTimeout: options.handshakeTimeout ?? d.handshakeTimeout,
    proxyProtocol,
    proxyTrusted: options.proxyTrusted ?? DEFAULT_PROXY_TRUSTED,
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
  const {
    hostname = SERVE_DEFAULTS.hostname,
    port = SERVE_DEFAULTS.port,
    cert,
    key,
  } = options;
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
