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

/** How a served connection ended, with its byte counts. */
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
