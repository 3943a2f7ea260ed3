/**
 * The upcase command: reads the configuration, sets up logging, serves, and
 * turns SIGINT and SIGTERM into a graceful shutdown.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { type Config, parseConfig } from "./src/config.ts";
import { setupLogging } from "./src/logging.ts";
import { hasNetPermission, readEnvIfAllowed } from "./src/permissions.ts";
import { serve, type UpcaseServer } from "./src/serve.ts";
import {
  describeStartupError,
  NET_PERMISSION_MESSAGE,
} from "./src/startup_error.ts";
import { usage } from "./src/usage.ts";
import { VERSION } from "./src/version.ts";

const log = getLogger(["upcase", "main"]);
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

function printLine(stream: typeof Deno.stdout, line: string): void {
  let bytes = new TextEncoder().encode(`${line}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

function wireSignals(shutdown: () => void, drainSeconds: number): () => void {
  let received = 0;
  const handlers = Object.entries(SIGNAL_NUMBERS).map(([name, number]) => {
    const signal = name as Deno.Signal;
    const handler = () => {
      if (received++ > 0) {
        log.warning("received {signal} again; exiting now", { signal });
        Deno.exit(128 + number);
      }
      log.info("received {signal}; draining for up to {seconds} s", {
        signal,
        seconds: drainSeconds,
      });
      shutdown();
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  return () => handlers.forEach((remove) => remove());
}

async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseConfig(args, readEnvIfAllowed);
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    printLine(Deno.stderr, `upcase: ${err.message}`);
    return 2;
  }
  if (config.help) {
    printLine(Deno.stdout, usage());
    return 0;
  }
  if (config.version) {
    printLine(Deno.stdout, `upcase ${VERSION}`);
    return 0;
  }
  if (!hasNetPermission(config.host)) {
    printLine(Deno.stderr, `upcase: ${NET_PERMISSION_MESSAGE}`);
    return 1;
  }
  setupLogging({ level: config.logLevel, format: config.logFormat });

  // Wired before the server listens, so that a signal sent as soon as it
  // reports ready is not met by the default action.
  const stop = new AbortController();
  const unwire = wireSignals(() => stop.abort(), config.drainTimeout);
  let server: UpcaseServer;
  try {
    server = serve({
      signal: stop.signal,
      hostname: config.host,
      port: config.port,
      unicode: config.unicode,
      drainTimeout: config.drainTimeout * 1000,
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      idleTimeout: config.idleTimeout * 1000,
    });
  } catch (err) {
    const addr = { hostname: config.host, port: config.port };
    printLine(Deno.stderr, `upcase: ${describeStartupError(err, addr)}`);
    unwire();
    return 1;
  }
  try {
    await server.finished;
    return 0;
  } catch (err) {
    log.fatal("stopped: accepting connections failed: {error}", {
      error: err instanceof Error ? err.message : String(err),
    });
    return 1;
  } finally {
    unwire();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
