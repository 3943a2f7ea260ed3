/**
 * The project's own load generator. Every client sends seeded random bytes
 * and checks that each byte it gets back is the uppercase of what it sent,
 * so a run reports lost, extra or wrong bytes as well as failed connections.
 *
 * @module
 */

/** What a run of {@linkcode runLoad} does. */
export interface LoadOptions {
  /** The server's host. */
  hostname?: string;
  /** The server's port. */
  port: number;
  /** How many connections in all. */
  connections: number;
  /** How many run at once. */
  concurrency: number;
  /** Bytes each connection sends before it half-closes. */
  bytesPerConnection: number;
  /** Size of each write. */
  chunkSize?: number;
  /** Seed for the payloads, so that a failing run can be repeated. */
  seed?: number;
  /** Stop starting new connections once this aborts. */
  signal?: AbortSignal;
  /**
   * Fail a connection that has not finished after this many milliseconds,
   * so that a server that stops answering fails the run instead of hanging
   * it.
   *
   * @default {Infinity}
   */
  timeoutMs?: number;
}

/** What a run of {@linkcode runLoad} saw. */
export interface LoadReport {
  /** Connections that completed with every byte right. */
  ok: number;
  /** Connections that failed: errors, short or wrong replies. */
  failed: number;
  /** Bytes sent in all. */
  bytesSent: number;
  /** Bytes received and checked in all. */
  bytesVerified: number;
  /**
   * Bytes sent whose uppercase never came back: on each failed connection,
   * everything after the last byte that came back right.
   */
  bytesLost: number;
  /** The first few failures, for the report. */
  errors: string[];
  /** Wall time of the run, in milliseconds. */
  elapsedMs: number;
}

function payload(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function upper(b: number): number {
  return b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
}

/**
 * Writes all of `data` in writes of `chunkSize` bytes, finishing partial
 * writes.
 *
 * @param conn Where to write.
 * @param data The bytes.
 * @param chunkSize The size of each write call.
 */
export async function writeInChunks(
  conn: Deno.Conn,
  data: Uint8Array,
  chunkSize: number,
): Promise<void> {
  for (let off = 0; off < data.length; off += chunkSize) {
    const chunk = data.subarray(off, off + chunkSize);
    let written = 0;
    while (written < chunk.length) {
      written += await conn.write(chunk.subarray(written));
    }
  }
}

/**
 * A failed {@linkcode verifiedExchange}. It says how many reply bytes had
 * been checked, in order, before the failure, so that a report can count
 * exactly the bytes whose uppercase never came back.
 */
export class ExchangeError extends Error {
  /** Reply bytes that were right, from the start, before the failure. */
  readonly verified: number;

  /**
   * @param message What went wrong.
   * @param verified Reply bytes checked before the failure.
   * @param options The underlying error, if any.
   */
  constructor(message: string, verified: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ExchangeError";
    this.verified = verified;
  }
}

/**
 * Runs one connection: sends `data` while reading, half-closes, and checks
 * the reply byte by byte.
 *
 * @param signal Aborting it closes the connection and fails the exchange.
 * @returns how many reply bytes were right; throws an
 * {@linkcode ExchangeError} on any failure or mismatch.
 */
export async function verifiedExchange(
  hostname: string,
  port: number,
  data: Uint8Array,
  chunkSize: number,
  signal?: AbortSignal,
): Promise<number> {
  let checked = 0;
  let conn: Deno.TcpConn | undefined;
  let closed = false;
  const close = () => {
    if (closed || !conn) return;
    closed = true;
    conn.close();
  };
  try {
    signal?.throwIfAborted();
    conn = await Deno.connect({ hostname, port });
    const c = conn;
    signal?.addEventListener("abort", close, { once: true });
    const reading = (async () => {
      const buf = new Uint8Array(64 * 1024);
      while (true) {
        const n = await c.read(buf);
        if (n === null) break;
        for (let i = 0; i < n; i++) {
          if (checked >= data.length) {
            throw new Error(`extra bytes after ${data.length}`);
          }
          if (buf[i] !== upper(data[checked]!)) {
            throw new Error(`wrong byte at offset ${checked}`);
          }
          checked++;
        }
      }
    })();
    const writing = (async () => {
      await writeInChunks(c, data, chunkSize);
      await c.closeWrite();
    })();
    await Promise.all([reading, writing]);
    if (checked !== data.length) {
      throw new Error(`short reply: ${checked} of ${data.length} bytes`);
    }
    return checked;
  } catch (err) {
    const message = signal?.aborted
      ? `aborted: ${signal.reason}`
      : err instanceof Error
      ? err.message
      : String(err);
    throw new ExchangeError(message, checked, { cause: err });
  } finally {
    signal?.removeEventListener("abort", close);
    close();
  }
}

async function timedExchange(
  hostname: string,
  port: number,
  data: Uint8Array,
  options: { chunkSize: number; timeoutMs: number },
): Promise<number> {
  const { chunkSize, timeoutMs } = options;
  if (timeoutMs === Infinity) {
    return verifiedExchange(hostname, port, data, chunkSize);
  }
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(`no end after ${timeoutMs} ms`),
    timeoutMs,
  );
  try {
    return await verifiedExchange(
      hostname,
      port,
      data,
      chunkSize,
      timeout.signal,
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `connections` verified exchanges, `concurrency` at a time.
 *
 * @param options The target, the shape of the load, and a stop signal.
 * @returns counts of good and failed connections and of bytes.
 */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const {
    hostname = "127.0.0.1",
    port,
    connections,
    concurrency,
    bytesPerConnection,
    chunkSize = 16 * 1024,
    seed = 1,
    signal,
    timeoutMs = Infinity,
  } = options;
  const report: LoadReport = {
    ok: 0,
    failed: 0,
    bytesSent: 0,
    bytesVerified: 0,
    bytesLost: 0,
    errors: [],
    elapsedMs: 0,
  };
  // A few distinct payloads are enough; each connection picks one.
  const payloads = Array.from(
    { length: 16 },
    (_, i) => payload(bytesPerConnection, seed + i),
  );
  const started = performance.now();
  let next = 0;
  async function worker() {
    while (next < connections && !signal?.aborted) {
      const index = next++;
      const data = payloads[index % payloads.length]!;
      try {
        // Awaited first: `x += await y` reads x before the await and loses
        // the other workers' updates.
        const verified = await timedExchange(hostname, port, data, {
          chunkSize,
          timeoutMs,
        });
        report.bytesVerified += verified;
        report.bytesSent += data.length;
        report.ok++;
      } catch (err) {
        // Bytes checked before the failure came back right; the rest is lost.
        const verified = err instanceof ExchangeError ? err.verified : 0;
        report.failed++;
        report.bytesSent += data.length;
        report.bytesVerified += verified;
        report.bytesLost += data.length - verified;
        if (report.errors.length < 5) {
          report.errors.push(
            `connection ${index}: ${err instanceof Error ? err.message : err}`,
          );
        }
      }
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(concurrency, connections) }, worker),
  );
  report.elapsedMs = performance.now() - started;
  return report;
}
