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
