/**
 * The transport the system tests run on: `UPCASE_TEST_TRANSPORT=node` runs
 * the same tests on Deno's `node:net` engine instead of `Deno.listen`.
 * `deno task test` runs them on both.
 *
 * @module
 */
import {
  type ServeOptions,
  type ServeUnixOptions,
  startServer,
  type UpcaseServer,
} from "../src/server/serve.ts";
import { type Transport, TRANSPORTS } from "../src/server/options.ts";

function fromEnv(): Transport {
  const name = Deno.env.get("UPCASE_TEST_TRANSPORT") ?? "deno";
  if (!(TRANSPORTS as readonly string[]).includes(name)) {
    throw new Error(
      `UPCASE_TEST_TRANSPORT="${name}" is not one of ${TRANSPORTS.join(", ")}`,
    );
  }
  return name as Transport;
}

/** The transport of this test run. */
export const TRANSPORT: Transport = fromEnv();

/** The command-line flags that select {@linkcode TRANSPORT}. */
export const TRANSPORT_ARGS: string[] = ["--transport", TRANSPORT];

/** `serve()` on the test run's transport. */
export function serveOn(
  options: ServeUnixOptions,
): Promise<UpcaseServer<Deno.UnixAddr>>;
export function serveOn(
  options?: ServeOptions,
): Promise<UpcaseServer<Deno.NetAddr>>;
export function serveOn(
  options: ServeOptions | ServeUnixOptions = {},
): Promise<UpcaseServer> {
  return startServer({ transport: TRANSPORT, ...options } as ServeOptions);
}

/**
 * Test options that run a test on the deno transport only, and on node
 * skip it with the reason in its name. Each use is a known difference
 * between the transports, written down in docs/deno_upstream.md.
 *
 * @param test The test's name, or its options from `needs()`.
 * @param reason Why it cannot run on node.
 */
export function denoTransportOnly(
  test: string | { name: string; ignore: boolean },
  reason: string,
): { name: string; ignore: boolean } {
  const { name, ignore } = typeof test === "string"
    ? { name: test, ignore: false }
    : test;
  if (TRANSPORT === "deno") return { name, ignore };
  return { name: `${name} (skipped on ${TRANSPORT}: ${reason})`, ignore: true };
}

/** Why the descriptor-exhaustion tests cannot run on node. */
export const EMFILE_SILENT =
  "the engine reports no accept error when descriptors run out, so the log line these tests wait for never comes (docs/deno_upstream.md)";
