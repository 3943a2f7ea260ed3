/**
 * The longest delay a single timer takes: larger ones overflow the 32-bit
 * timer, fire at once, and make Deno print a `TimeoutOverflowWarning`.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `callback` once after `ms` milliseconds, however long that is: a
 * delay beyond {@linkcode MAX_TIMER_MS} (about 24.8 days) is waited out in
 * steps, and `Infinity` never fires. Options such as `--drain-timeout` take
 * any number of seconds, and a huge one means "wait for ever", not "now".
 *
 * @param callback Called once the time is up.
 * @param ms The delay in milliseconds, 0 or more.
 * @returns a function that cancels the timer.
 *
 * @example A delay too long for one timer is not fired at once
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { setLongTimeout } from "./long_timeout.ts";
 *
 * let fired = false;
 * const cancel = setLongTimeout(() => fired = true, 30 * 24 * 3600 * 1000);
 * await new Promise((resolve) => setTimeout(resolve, 5));
 * assertEquals(fired, false);
 * cancel();
 * ```
 */
export function setLongTimeout(callback: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const due = performance.now() + ms;
  const arm = (left: number) => {
    if (left === Infinity) return;
    timer = setTimeout(() => {
      const rest = due - performance.now();
      if (left > MAX_TIMER_MS && rest > 0) arm(rest);
      else callback();
    }, Math.min(Math.max(left, 0), MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
