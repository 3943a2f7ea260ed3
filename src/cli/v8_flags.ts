/**
 * The V8 flags upcase runs with, in `deno run`'s form: `deno task start`,
 * `deno task compile` (which embeds them in the binary) and the workers
 * that a supervisor under `deno run` starts all pass them.
 *
 * `--max-semi-space-size=4` caps each half of V8's young generation at
 * 4 MB. Opening thousands of connections leaves garbage that would grow it
 * to 16 MB per half, and an idle server never collects it again, so an
 * operator would see that memory as a cost per connection. At 10,000 idle
 * connections the cap takes resident memory from 11.5 to 7.9 KB per
 * connection on the deno transport and from 9.8 to 7.1 KB on node. A cap
 * of 1 MB saves no more, but cost 11 to 24% of bulk throughput at 100
 * connections on the deno transport; at 4 MB throughput is the same
 * within the noise (README, "Performance").
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { V8_FLAGS } from "./v8_flags.ts";
 *
 * assertEquals(V8_FLAGS, "--v8-flags=--max-semi-space-size=4");
 * ```
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=4";
