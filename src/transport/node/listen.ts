import net from "node:net";
import tls from "node:tls";
import type { TlsPem } from "../../tls/pem.ts";
import type { Addr, Conn, Listener, ListenTarget } from "../types.ts";
import { engineError, type RawStream, takeOverAccepts } from "./engine.ts";
import { HandleConn } from "./handle_conn.ts";
import { SocketConn } from "./socket_conn.ts";

// The engine accepts every connection as it arrives, where Deno.listen
// leaves them in the kernel's backlog until the server asks. Those the
// server has not taken yet wait here, paused and unread; past this many
// (the kernel's default backlog), a new one is reset, as a full backlog
// would turn it away.
const MAX_WAITING = 511;
// How often a listener with a waiting accept() is re-armed (see #rearmSoon).
const REARM_MS = 500;
// The Deno whose engine internals src/transport/node/engine.ts knows.
const REQUIRED_DENO = "2.9";

/**
 * Opens the server's listener on Deno's `node:net` engine, which reads on
 * readiness rather than on each read call. This is the one place that
 * listens with it.
 *
 * A plain connection is served at its handle, with no `net.Socket`
 * ({@linkcode HandleConn}). TLS runs per connection, on a `node:tls` socket
 * over the accepted one ({@linkcode SocketConn}), so
 * that the handshake belongs to the connection's task and its deadline; a
 * reload swaps the context that new connections get, and the port never
 * closes.
 *
 * @param target The transport and the address.
 * @returns the listener, once it listens; it rejects if it cannot, with the
 * error `Deno.listen` would have thrown (`AddrInUse`, ...).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { listenNode } from "./listen.ts";
 *
 * const listener = await listenNode({ transport: "tcp", hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port });
 * const conn = await listener.accept();
 * await client.write(new Uint8Array([104, 105]));
 * const buffer = new Uint8Array(8);
 * assertEquals(await conn.read(buffer), 2);
 * conn.close();
 * listener.close();
 * ```
 */
export async function listenNode(target: ListenTarget): Promise<Listener> {
  const server = net.createServer({
    allowHalfOpen: true,
    pauseOnConnect: true,
    noDelay: true,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const ready = () => {
        server.off("error", reject);
        resolve();
      };
      if (target.transport === "unix") server.listen(target.path, ready);
      else {
        const { hostname: host, port, reusePort } = target;
        server.listen(
          { host, port, ...(reusePort ? { reusePort } : {}) },
          ready,
        );
      }
    });
  } catch (err) {
    throw denoError(err);
  }
  return new NodeListener(server, target);
}

interface PendingAccept {
  resolve(conn: Conn): void;
  reject(err: unknown): void;
}

class NodeListener implements Listener {
  readonly addr: Addr;
  readonly #server: net.Server;
  // What arrived while nobody was accepting: connections, and accept errors
  // in their place, in order.
  readonly #waiting: (Arrival | Error)[] = [];
  #accepting: PendingAccept | undefined;
  #closed = false;
  #context: tls.SecureContext | undefined;
  #rearmTimer: number | undefined;

  constructor(server: net.Server, target: ListenTarget) {
    this.#server = server;
    this.addr = listenerAddr(server, target);
    if (target.transport === "tls") {
      this.#context = secureContext(target.pem);
      this.reloadTls = (pem) => {
        // Throws on a pair that does not match; the old context stays.
        this.#context = secureContext(pem);
        return Promise.resolve(0);
      };
    }
    if (this.#context) {
      server.on("connection", (socket: net.Socket) => this.#arrived(socket));
    } else {
      const taken = takeOverAccepts(
        server,
        target.transport === "unix",
        (status, handle) =>
          handle
            ? this.#arrived(handle)
            : this.#hand(engineError(status, "accept")),
      );
      if (!taken) {
        server.close();
        throw new Error(
          `--transport node needs the node:net engine of Deno ${REQUIRED_DENO}; this is Deno ${Deno.version.deno}: use --transport deno`,
        );
      }
    }
    server.on("error", (err) => this.#hand(denoError(err)));
  }

  readonly reloadTls?: (pem: TlsPem) => Promise<number>;

  accept(): Promise<Conn> {
    if (this.#closed) return Promise.reject(closedError());
    const next = this.#waiting.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next) return Promise.resolve(this.#wrap(next));
    return new Promise((resolve, reject) => {
      this.#accepting = { resolve, reject };
      this.#rearmSoon();
    });
  }

  // Deno 2.9's engine stops accepting for good after accept(2) fails with
  // EMFILE, silently (docs/deno_upstream.md); listening again on the same
  // socket starts it again, and is harmless otherwise. So while an accept
  // waits, the listener is re-armed now and then.
  #rearmSoon(): void {
    if (this.#rearmTimer !== undefined) return;
    const timer = setTimeout(() => {
      this.#rearmTimer = undefined;
      if (this.#closed || !this.#accepting) return;
      rearm(this.#server);
      this.#rearmSoon();
    }, REARM_MS) as unknown as number;
    Deno.unrefTimer(timer);
    this.#rearmTimer = timer;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#rearmTimer);
    this.#server.close();
    for (const next of this.#waiting.splice(0)) {
      if (!(next instanceof Error)) discard(next.accepted);
    }
    const accepting = this.#accepting;
    this.#accepting = undefined;
    accepting?.reject(closedError());
  }

  #arrived(accepted: Accepted): void {
    if (this.#closed || this.#waiting.length >= MAX_WAITING) {
      return discard(accepted, { reset: true });
    }
    const remote = remoteAddr(accepted, this.addr);
    if (remote === undefined) {
      // Reset before the engine took it, as accept(2) reports with
      // ECONNABORTED; the accept loop skips it the same way.
      discard(accepted);
      return this.#hand(abortedError());
    }
    this.#hand({ accepted, remote });
  }

  // Gives the next connection or accept error to the pending accept(), or
  // keeps it for the next one.
  #hand(next: Arrival | Error): void {
    const accepting = this.#accepting;
    this.#accepting = undefined;
    if (!accepting) this.#waiting.push(next);
    else if (next instanceof Error) accepting.reject(next);
    else accepting.resolve(this.#wrap(next));
  }

  #wrap({ accepted, remote }: Arrival): Conn {
    const addrs = { remote, local: this.addr };
    if (!(accepted instanceof net.Socket)) {
      accepted.setNoDelay?.(true);
      return new HandleConn(accepted, addrs);
    }
    const secure = new tls.TLSSocket(accepted, {
      isServer: true,
      secureContext: this.#context,
      // As on the socket itself: the replies go on after the client's end.
      allowHalfOpen: true,
    } as tls.TLSSocketOptions);
    return new SocketConn(secure, addrs, handshakeOf(secure));
  }
}

/** An accepted connection: a bare handle, or a socket to run TLS on. */
type Accepted = RawStream | net.Socket;

/** An accepted connection and its client's address, read once. */
interface Arrival {
  accepted: Accepted;
  remote: Deno.Addr;
}

function discard(accepted: Accepted, how: { reset?: boolean } = {}): void {
  if (accepted instanceof net.Socket) {
    if (how.reset) accepted.resetAndDestroy();
    else accepted.destroy();
  } else if (how.reset && accepted.reset) accepted.reset();
  else accepted.close();
}

function rearm(server: net.Server): void {
  const handle = (server as unknown as {
    _handle?: { listen?: (backlog: number) => number };
  })._handle;
  handle?.listen?.(MAX_WAITING);
}

function listenerAddr(server: net.Server, target: ListenTarget): Addr {
  if (target.transport === "unix") {
    return { transport: "unix", path: target.path };
  }
  const { address, port } = server.address() as net.AddressInfo;
  return { transport: "tcp", hostname: address, port };
}

// The client's address; undefined for a TCP client already gone.
function remoteAddr(accepted: Accepted, local: Addr): Deno.Addr | undefined {
  if (local.transport === "unix") return { transport: "unix", path: "" };
  let peer: { address?: string | undefined; port?: number | undefined } = {};
  if (accepted instanceof net.Socket) {
    peer = { address: accepted.remoteAddress, port: accepted.remotePort };
  } else if (accepted.getpeername?.(peer) !== 0) return undefined;
  if (peer.address === undefined) return undefined;
  return { transport: "tcp", hostname: peer.address, port: peer.port ?? 0 };
}

function secureContext(pem: TlsPem): tls.SecureContext {
  return tls.createSecureContext({ cert: pem.cert, key: pem.key });
}

// The handshake has started by the time the task asks for it; this is its
// end, whichever comes first.
function handshakeOf(socket: tls.TLSSocket): () => Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    socket.once("secure", resolve);
    socket.once("error", reject);
    socket.once(
      "close",
      () =>
        reject(
          new Deno.errors.UnexpectedEof("closed during the TLS handshake"),
        ),
    );
  });
  // Settled by the task's await, or never asked for: not unhandled.
  done.catch(() => {});
  return () => done;
}

function abortedError(): Error {
  return Object.assign(
    new Deno.errors.ConnectionAborted(
      "the connection was reset before it was accepted",
    ),
    { code: "ECONNABORTED" },
  );
}

function closedError(): Error {
  return new Deno.errors.BadResource("the listener is closed");
}

// The callers know the errors of Deno.listen; the engine's carry a code.
function denoError(err: unknown): Error {
  const { code, message } = err as { code?: string; message?: string };
  switch (code) {
    case "EADDRINUSE":
      return new Deno.errors.AddrInUse(message);
    case "EADDRNOTAVAIL":
      return new Deno.errors.AddrNotAvailable(message);
    case "EACCES":
    case "EPERM":
      return new Deno.errors.PermissionDenied(message);
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}
