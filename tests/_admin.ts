/**
 * Shared pieces for the admin endpoint's tests: captured log records, a
 * client that holds a connection open, and a reader for the metrics text.
 *
 * @module
 */

import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { readExactly } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The server's log records, captured while a test runs. */
export interface CapturedLogs {
  /** Every record so far. */
  readonly records: LogRecord[];
  /** The text of a record, with its values filled in. */
  message(record: LogRecord): string;
  /** Resolves once `count` records whose message matches have been logged. */
  until(pattern: RegExp, count?: number): Promise<void>;
}

function render(record: LogRecord): string {
  return record.message.map((p) => String(p)).join("");
}

/**
 * Routes the `upcase` loggers to memory while `fn` runs, so that a test can
 * wait for what the server logs and compare its figures with the logs.
 */
export async function withLogs<T>(
  fn: (logs: CapturedLogs) => Promise<T>,
): Promise<T> {
  const records: LogRecord[] = [];
  let waiters: { pattern: RegExp; count: number; resolve: () => void }[] = [];
  const matching = (pattern: RegExp) =>
    records.filter((r) => pattern.test(render(r))).length;
  configureSync({
    reset: true,
    sinks: {
      memory(record: LogRecord) {
        records.push(record);
        waiters = waiters.filter((w) =>
          matching(w.pattern) < w.count || void w.resolve()
        );
      },
    },
    loggers: [
      { category: ["upcase"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  const until = (pattern: RegExp, count = 1) =>
    matching(pattern) >= count
      ? Promise.resolve()
      : new Promise<void>((resolve) =>
        void waiters.push({ pattern, count, resolve })
      );
  try {
    return await fn({ records, message: render, until });
  } finally {
    resetSync();
  }
}

/** Sends `text` on an open connection and returns the echo of that length. */
export async function roundTrip(
  conn: Deno.Conn,
  text: string,
): Promise<string> {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) {
    written += await conn.write(bytes.subarray(written));
  }
  return decoder.decode(await readExactly(conn, bytes.length));
}

/**
 * Half-closes a held connection, reads to the server's end, and closes it:
 * the client finishes cleanly, so the server logs the reason `eof`.
 */
export async function finish(conn: Deno.Conn): Promise<number> {
  await conn.closeWrite();
  let rest = 0;
  const buf = new Uint8Array(4096);
  for (let n; (n = await conn.read(buf)) !== null;) rest += n;
  conn.close();
  return rest;
}

/**
 * Parses the Prometheus text format into samples keyed as written, such as
 * `upcase_connections_total{reason="eof"}`. Throws on a line it cannot read,
 * so a malformed exposition fails the test even without promtool.
 */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`Cannot parse metrics line: "${line}"`);
    const value = m[2] === "+Inf" ? Infinity : Number(m[2]);
    if (Number.isNaN(value)) {
      throw new Error(`Cannot parse metrics value: "${line}"`);
    }
    samples.set(m[1]!, value);
  }
  return samples;
}

/** One sample's value, or a thrown error naming the missing sample. */
export function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  if (value === undefined) {
    throw new Error(
      `No sample ${key}; have:\n${[...samples.keys()].join("\n")}`,
    );
  }
  return value;
}

/** Fetches `path` from the admin server and returns the status and body. */
export async function get(
  port: number,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/**
 * Sends `request` as raw bytes on a new connection and returns everything
 * the server sent until it closed, as Latin-1 text, so that a test sees
 * the status line and header fields exactly as they went on the wire.
 */
export async function rawExchange(
  port: number,
  request: string | Uint8Array,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = typeof request === "string"
      ? new TextEncoder().encode(request)
      : request;
    for (let sent = 0; sent < bytes.length;) {
      sent += await conn.write(bytes.subarray(sent));
    }
    return await readToEnd(conn);
  } finally {
    conn.close();
  }
}

/** Reads until the server closes, as Latin-1 text. */
export async function readToEnd(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  for (let n; (n = await conn.read(buf)) !== null;) {
    for (const byte of buf.subarray(0, n)) text += String.fromCharCode(byte);
  }
  return text;
}

/**
 * Resolves as `promise` does, or rejects naming `what` after `ms`, so that
 * a server that lost the behaviour fails the test instead of hanging it.
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
