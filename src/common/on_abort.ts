/**
 * Calls `action` once `signal` aborts: at once if it already has, and never
 * without a signal. For the servers' `signal` option, which shuts them down.
 *
 * @param signal The signal, if any.
 * @param action What to do.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { onAbort } from "./on_abort.ts";
 *
 * const calls: string[] = [];
 * onAbort(AbortSignal.abort(), () => calls.push("now"));
 * const later = new AbortController();
 * onAbort(later.signal, () => calls.push("later"));
 * later.abort();
 * assertEquals(calls, ["now", "later"]);
 * ```
 */
export function onAbort(
  signal: AbortSignal | undefined,
  action: () => void,
): void {
  if (signal?.aborted) action();
  else signal?.addEventListener("abort", action, { once: true });
}
