import type { Logger } from "@logtape/logtape";
import { formatAddr } from "../common/format_addr.ts";
import { type HeadParse, parseRequestHead } from "./request_head.ts";
import { httpResponseBytes, reasonPhrase } from "./response_bytes.ts";
import type { Conn } from "../transport/types.ts";
import { errorMessage } from "../common/error_message.ts";
import { appendBytes } from "../common/append_bytes.ts";

/** Answers one request; it may be async. */
export type HttpHandler = (request: Request) => Response | Promise<Response>;

/**
 * Where an {@linkcode HttpExchange} is: reading the request head, waiting
 * for the handler, writing the answer, waiting for the client to close
 * after it, or closed.
 */
export type ExchangeState =
  | "reading"
  | "handling"
  | "writing"
  | "lingering"
  | "closed";

/** Options for {@linkcode HttpExchange}. */
export interface HttpExchangeOptions {
  /** Answers the request. */
  handler: HttpHandler;
  /** Milliseconds from the start for the whole request head to arrive. */
  headerTimeout: number;
  /** Milliseconds from the start after which the connection is closed, whatever it is doing. */
  requestTimeout: number;
  /** Where failures are logged. */
  log: Logger;
}

const READ_SIZE = 4096;
// After the answer, the client's own close is awaited this long, and this
// much of whatever it still sends is read and dropped: closing with unread
// bytes would reset the connection and could destroy the answer in flight.
// Go's net/http reads up to 256 KiB and waits 500 ms in the same place.
const LINGER_MS = 500;
const LINGER_BYTES = 256 * 1024;
const ALLOW = "GET, HEAD";

// A parse error, or a 408 for a head that came too slowly.
type HeadRead =
  | Extract<HeadParse, { status: "ok" }>
  | { status: "error"; code: number; reason: string };
// `late` marks a 408, after which no lingering read may start: the read that
// the deadline overtook is still pending.
type Answer = { response: Response; head: boolean; late?: boolean };

function plain(status: number, detail: string, headers = {}): Response {
  return new Response(`${status} ${reasonPhrase(status)}: ${detail}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function timer(ms: number): { late: Promise<"late">; cancel: () => void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    id = setTimeout(() => resolve("late"), ms);
  });
  return { late, cancel: () => clearTimeout(id) };
}

/**
 * One connection of a strict HTTP/1.1 server that answers one GET or HEAD
 * request and closes: it reads the head within `headerTimeout` (408 if some
 * of it came, a silent close if none did), answers bad heads with 400, 414,
 * 431 or 505 and other methods with 405, hands the rest to the handler (500
 * if it throws), writes the answer with `Connection: close`, and closes
 * after the client has, or at `requestTimeout` whatever happens. Its `done`
 * never rejects.
 */
export class HttpExchange {
  /** Settles once the connection is closed. */
  readonly done: Promise<void>;
  readonly #conn: Conn;
  readonly #options: HttpExchangeOptions;
  #state: ExchangeState = "reading";

  /**
   * Starts serving `conn`.
   *
   * @param conn The accepted connection; it is closed when `done` settles.
   * @param options The handler, the deadlines and the logger.
   */
  constructor(conn: Conn, options: HttpExchangeOptions) {
    this.#conn = conn;
    this.#options = options;
    this.done = this.#run().catch((err) => {
      // Resets and writes cut by the deadline end up here; they concern
      // only this client.
      options.log.debug("admin connection from {peer} failed: {error}", {
        peer: formatAddr(conn.remoteAddr),
        error: errorMessage(err),
      });
    }).finally(() => this.close());
  }

  /** What the connection is doing now. */
  get state(): ExchangeState {
    return this.#state;
  }

  /** Closes the connection now, whatever it is doing. */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #run(): Promise<void> {
    const deadline = setTimeout(
      () => this.close(),
      this.#options.requestTimeout,
    );
    try {
      const parsed = await this.#readHead();
      if (parsed === undefined) return;
      const answer = await this.#respond(parsed);
      if (this.#state === "closed") return;
      this.#state = "writing";
      await this.#writeAll(answer);
      if (!answer.late) await this.#linger();
    } finally {
      clearTimeout(deadline);
    }
  }

  /** The parsed head, or undefined if the connection ended first. */
  async #readHead(): Promise<HeadRead | undefined> {
    const { late, cancel } = timer(this.#options.headerTimeout);
    let received = new Uint8Array(0);
    try {
      for (;;) {
        const parsed = parseRequestHead(received);
        if (parsed.status !== "incomplete") return parsed;
        const buffer = new Uint8Array(READ_SIZE);
        const read = this.#conn.read(buffer);
        // Closing the connection after a timeout rejects this read.
        read.catch(() => {});
        const n = await Promise.race([read, late]);
        if (n === null) return undefined;
        if (n === "late") {
          // A connection that sent nothing gets no answer, as in Go and in
          // HAProxy with http-ignore-probes: it may be a browser's spare.
          if (received.length === 0) return undefined;
          return {
            status: "error",
            code: 408,
            reason:
              `no complete request head within ${this.#options.headerTimeout} ms`,
          };
        }
        received = appendBytes(received, buffer.subarray(0, n));
      }
    } finally {
      cancel();
    }
  }

  async #respond(parsed: HeadRead): Promise<Answer> {
    if (parsed.status === "error") {
      this.#logRefusal(parsed.code, parsed.reason);
      const response = plain(parsed.code, parsed.reason);
      return { response, head: false, late: parsed.code === 408 };
    }
    const { method, target, headers } = parsed.head;
    const head = method === "HEAD";
    // The server reads no bodies, so it takes no method that sends one.
    if (method !== "GET" && !head) {
      this.#logRefusal(405, method);
      const response = plain(405, `${method} is not allowed`, { allow: ALLOW });
      return { response, head };
    }
    let request: Request;
    try {
      // HTTP/1.0 may leave Host out, and HTTP allows it empty.
      const host = headers.find(([name]) => name === "host")?.[1] ||
        formatAddr(this.#conn.localAddr);
      const url = target.startsWith("/") ? `http://${host}${target}` : target;
      request = new Request(new URL(url), { method, headers });
    } catch (err) {
      this.#logRefusal(400, errorMessage(err));
      return { response: plain(400, "malformed host or target"), head };
    }
    this.#state = "handling";
    try {
      return { response: await this.#options.handler(request), head };
    } catch (err) {
      this.#options.log.error("admin request failed: {error}", {
        error: errorMessage(err),
      });
      return { response: plain(500, "the handler failed"), head };
    }
  }

  async #writeAll({ response, head }: Answer): Promise<void> {
    let bytes = await httpResponseBytes(response, { head });
    while (bytes.length > 0) {
      bytes = bytes.subarray(await this.#conn.write(bytes));
    }
  }

  async #linger(): Promise<void> {
    this.#state = "lingering";
    await this.#conn.closeWrite();
    const { late, cancel } = timer(LINGER_MS);
    try {
      const buffer = new Uint8Array(READ_SIZE);
      for (let dropped = 0; dropped < LINGER_BYTES;) {
        const read = this.#conn.read(buffer);
        read.catch(() => {});
        const n = await Promise.race([read, late]);
        if (n === null || n === "late") return;
        dropped += n;
      }
    } finally {
      cancel();
    }
  }

  #logRefusal(status: number, reason: string): void {
    // Debug only: whoever can reach the port could otherwise fill the log.
    this.#options.log.debug(
      "admin request from {peer} answered {status}: {reason}",
      {
        peer: formatAddr(this.#conn.remoteAddr),
        status,
        reason,
      },
    );
  }
}
