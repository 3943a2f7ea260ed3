import type { ServeCommonOptions } from "../server/options.ts";
import type { Config } from "./config.ts";

/**
 * The one mapping from the command's options to {@linkcode serve}'s: the
 * command takes seconds where `serve()` takes milliseconds. The command
 * serves with them, and the supervisor of `--workers` reports them.
 *
 * @param config The parsed command line.
 * @returns the options every transport shares.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseConfig } from "./config.ts";
 * import { serveOptionsFromConfig } from "./serve_options.ts";
 *
 * const config = parseConfig(["--idle-timeout", "2.5"], () => undefined);
 * assertEquals(serveOptionsFromConfig(config).idleTimeout, 2500);
 * ```
 */
export function serveOptionsFromConfig(
  config: Config,
): Required<
  Omit<ServeCommonOptions, "signal" | "onAcceptError" | "sharedLimits">
> {
  return {
    transport: config.transport,
    unicode: config.unicode,
    drainTimeout: config.drainTimeout * 1000,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    ipv6Prefix: config.ipv6Prefix,
    idleTimeout: config.idleTimeout * 1000,
    handshakeTimeout: config.handshakeTimeout * 1000,
    proxyProtocol: config.proxyProtocol,
    proxyTrusted: config.proxyTrusted,
  };
}
