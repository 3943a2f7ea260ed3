import { errorMessage } from "../common/error_message.ts";
import type { CloseReason, CutReason } from "./result.ts";
import { isReset } from "./reset_error.ts";

/**
 * Where a connection is: its TLS handshake, its PROXY header, or its data.
 * It only moves forward.
 */
export type Phase = "handshake" | "header" | "data";

/** What a failure means for a connection, as {@linkcode classifyFailure} tells. */
export type Failure =
  | { outcome: "ended"; reason: CloseReason; error?: unknown }
  | { outcome: "rejected"; reason: "closed"; detail: string };

/**
 * Tells what a read, write or handshake failure means: a cut by the server
 * wins, whatever the socket then said; a failure while the PROXY header was
 * read is a header cut short; a reset is the client's; a TLS client that
 * closed its socket without TLS's own goodbye (close_notify), as many do and
 * as health checks that only connect do, ended its input like any other;
 * anything else is an error.
 *
 * @param err What the read, write or handshake rejected with.
 * @param context The connection's phase, and the server's cut reason, if it cut it.
 * @returns how the connection ended, or why it was rejected.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { classifyFailure } from "./classify_failure.ts";
 *
 * const reset = new Deno.errors.ConnectionReset("reset by peer");
 * assertEquals(classifyFailure(reset, { phase: "data" }), { outcome: "ended", reason: "reset" });
 * assertEquals(classifyFailure(reset, { phase: "data", cut: "idle" }), { outcome: "ended", reason: "idle" });
 * ```
 */
export function classifyFailure(
  err: unknown,
  context: { phase: Phase; cut?: CutReason | undefined },
): Failure {
  if (context.cut) return { outcome: "ended", reason: context.cut };
  if (context.phase === "header") {
    return {
      outcome: "rejected",
      reason: "closed",
      detail: `the header read failed: ${errorMessage(err)}`,
    };
  }
  if (isReset(err)) return { outcome: "ended", reason: "reset" };
  if (err instanceof Deno.errors.UnexpectedEof) {
    return { outcome: "ended", reason: "eof" };
  }
  return { outcome: "ended", reason: "error", error: err };
}
