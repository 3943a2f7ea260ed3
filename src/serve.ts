import { getLogger } from "@logtape/logtape";
import { type AcceptErrorKind, acceptLoop } from "./accept_loop.ts";
import { runConnection } from "./connection_task.ts";
import { formatAddr } from "./format_addr.ts";

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

/** A running server, as returned by {@linkcode serve}. */
export interface UpcaseServer extends AsyncDisposable {
  /** The address the server listens on, with the real port. */
  readonly addr: Deno.NetAddr;
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

interface Tracked {
  readonly cut: AbortController;
  readonly done: Promise<unknown>;
}

/**
 * Starts an upcase server: every connection is its own task, and whatever a
 * client sends comes back uppercased. It listens before it returns, so a
 * port in use or a missing permission throws here.
 *
 * @param options Where to listen, how to uppercase, and how to shut down.
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
    onAcceptError,
  } = options;
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const addr = listener.addr;
  const closing = new AbortController();
  const active = new Map<number, Tracked>();
  let nextId = 1;

  function handle(conn: Deno.TcpConn): void {
    const id = nextId++;
    const cut = new AbortController();
    const done = runConnection(conn, { id, unicode, signal: cut.signal })
      .finally(() => active.delete(id));
    active.set(id, { cut, done });
  }

  const loop = acceptLoop(listener, {
    signal: closing.signal,
    onConnection: handle,
    ...(onAcceptError ? { onAcceptError } : {}),
  });

  let shutdownPromise: Promise<DrainSummary> | undefined;
  function shutdown(): Promise<DrainSummary> {
    shutdownPromise ??= drain();
    return shutdownPromise;
  }

  async function drain(): Promise<DrainSummary> {
    closing.abort();
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
      for (const t of left) t.cut.abort();
      await Promise.all(left.map((t) => t.done));
    }
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
    finished,
    get activeConnections() {
      return active.size;
    },
    shutdown,
    [Symbol.asyncDispose]: () => shutdown().then(() => {}),
  };
}
