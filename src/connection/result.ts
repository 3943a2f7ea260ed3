import { isReset } from "./reset_error.ts";
import { UpcaseStream } from "./upcase_stream.ts";

/** Anything with a byte stream in each direction, such as a `Deno.Conn`. */
export interface Duplex {
  /** Bytes from the client. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the client. */
  readonly writable: WritableStream<Uint8Array>;
}

/**
 * Why a connection ended: the client finished (`eof`), the peer reset or
 * broke the connection (`reset`), the server cut it while shutting down
 * (`shutdown`), because no byte moved for too long (`idle`) or because the
 * TLS handshake did not finish in time (`handshake_timeout`), or something
 * else failed (`error`).
 */
export type CloseReason =
  | "eof"
  | "reset"
  | "shutdown"
  | "idle"
  | "handshake_timeout"
  | "error";

/** The reasons a server can give when it cuts a connection. */
export type CutReason = "shutdown" | "idle" | "handshake_timeout";

/** What {@linkcode pipeConnection} reports when a connection ends. */
export interface ConnectionResult {
  /** Bytes received from the client. */
  bytesIn: number;
  /** Bytes produced for the client. */
  bytesOut: number;
  /** Why the connection ended. */
  reason: CloseReason;
  /** The failure, when `reason` is `error`. */
  error?: unknown;
}

/** Options for {@linkcode pipeConnection}. */
export interface PipeOptions {
  /**
   * Uppercase with full Unicode case rules.
   *
   * @default {false}
   */
  unicode?: boolean;
  /**
   * Aborting it cuts the connection. The result's reason is the abort
   * reason when that is a {@linkcode CutReason}, and `shutdown` otherwise.
   */
  signal?: AbortSignal;
  /**
   * The stream to uppercase with, when the caller wants to watch its byte
   * counts while the connection runs; `unicode` and `onChunk` are then
   * ignored.
   */
  stream?: UpcaseStream;
  /** Called with each chunk received, before it is uppercased. */
  onChunk?: (chunk: Uint8Array) => void;
}

/**
 * Streams everything the client sends back to it uppercased, until the
 * client half-closes (everything is echoed, then the write side closes) or
 * the connection fails. It never rejects: a failure is reported in the
 * result, so that it stays with this connection.
 *
 * @param duplex The connection, or any pair of byte streams.
 * @param options The case mode, a signal that cuts the connection, and a tap.
 * @returns the byte counts and the reason the connection ended.
 *
 * @example Uppercase a pair of streams
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { pipeConnection } from "./result.ts";
 *
 * const sent: Uint8Array[] = [];
 * const result = await pipeConnection({
 *   readable: ReadableStream.from([new TextEncoder().encode("hi there")]),
 *   writable: new WritableStream({ write: (chunk) => void sent.push(chunk) }),
 * });
 * assertEquals(new TextDecoder().decode(sent[0]), "HI THERE");
 * assertEquals(result, { bytesIn: 8, bytesOut: 8, reason: "eof" });
 * ```
 */
export async function pipeConnection(
  duplex: Duplex,
  options: PipeOptions = {},
): Promise<ConnectionResult> {
  const { unicode = false, signal, onChunk } = options;
  const upcase = options.stream ??
    new UpcaseStream(onChunk ? { unicode, onChunk } : { unicode });
  const counts = () => ({ bytesIn: upcase.bytesIn, bytesOut: upcase.bytesOut });
  try {
    await duplex.readable.pipeThrough(upcase).pipeTo(
      duplex.writable,
      signal ? { signal } : {},
    );
    return { ...counts(), reason: "eof" };
  } catch (error) {
    if (signal?.aborted) {
      const reason = signal.reason === "idle" ? "idle" : "shutdown";
      return { ...counts(), reason };
    }
    if (isReset(error)) return { ...counts(), reason: "reset" };
    return { ...counts(), reason: "error", error };
  }
}
