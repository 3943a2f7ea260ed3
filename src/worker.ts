/**
 * In a worker, calls `onGone` once the supervisor is gone: the supervisor
 * holds the write end of the worker's standard input and never writes, so
 * end of input means it exited, even by SIGKILL, and the worker should
 * drain rather than serve on unsupervised.
 *
 * @param onGone Called once, when standard input ends or fails.
 * @param stdin The input to watch; standard input by default.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { watchSupervisor } from "./worker.ts";
 *
 * const gone = Promise.withResolvers<string>();
 * watchSupervisor(() => gone.resolve("gone"), new Blob(["ignored"]).stream());
 * assertEquals(await gone.promise, "gone");
 * ```
 */
export function watchSupervisor(
  onGone: () => void,
  stdin: ReadableStream<Uint8Array> = Deno.stdin.readable,
): void {
  void (async () => {
    try {
      for await (const _ of stdin) {
        // Nothing is ever sent; anything that is, is ignored.
      }
    } catch {
      // A broken pipe ends it just the same.
    }
    onGone();
  })();
}
