import { getLogger } from "@logtape/logtape";
import { type ConnectionResult, pipeConnection } from "./connection.ts";
import { formatAddr } from "./format_addr.ts";
import { previewBytes } from "./preview.ts";

const log = getLogger(["upcase", "conn"]);

/** Options for {@linkcode runConnection}. */
export interface RunConnectionOptions {
  /** The connection's id in the logs. */
  id: number;
  /** Uppercase with full Unicode case rules. */
  unicode: boolean;
  /** Aborting it cuts the connection. */
  signal: AbortSignal;
}

/**
 * Serves one accepted connection from start to end: logs it opening, pipes
 * it, closes it whatever happened, and logs how it ended with its byte
 * counts. It never rejects, so one connection's failure stays with it.
 *
 * @param conn The accepted connection; it is closed when this settles.
 * @param options The connection's id, the case mode and the cut signal.
 * @returns how the connection ended.
 */
export async function runConnection(
  conn: Deno.Conn,
  options: RunConnectionOptions,
): Promise<ConnectionResult> {
  const { id, unicode, signal } = options;
  const peer = formatAddr(conn.remoteAddr);
  const started = performance.now();
  log.info("connection {id} opened from {peer}", { id, peer });
  // Decided once per connection, so that info level costs nothing per chunk.
  const onChunk = log.isEnabledFor("debug")
    ? (chunk: Uint8Array) =>
      log.debug("connection {id} received {bytes} bytes: {preview}", {
        id,
        bytes: chunk.length,
        preview: previewBytes(chunk),
      })
    : undefined;
  let result: ConnectionResult;
  try {
    result = await pipeConnection(
      conn,
      onChunk ? { unicode, signal, onChunk } : { unicode, signal },
    );
  } catch (error) {
    result = { bytesIn: 0, bytesOut: 0, reason: "error", error };
  } finally {
    try {
      conn.close();
    } catch {
      // The finished pipe closed it already.
    }
  }
  const durationMs = Math.round((performance.now() - started) * 10) / 10;
  const { bytesIn, bytesOut, reason, error } = result;
  log.info(
    "connection {id} closed ({reason}): {bytesIn} bytes in, {bytesOut} bytes out, {durationMs} ms, peer {peer}",
    { id, peer, bytesIn, bytesOut, durationMs, reason },
  );
  if (reason === "error") {
    log.warning("connection {id} failed: {error}", {
      id,
      error: error instanceof Error ? error.message : String(error),
    });
  }
  return result;
}
