/**
 * The upcase command: reads the configuration, sets up logging, serves, and
 * turns SIGINT and SIGTERM into a graceful shutdown and SIGHUP into a TLS
 * certificate reload. The only module that touches the process.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { resolve } from "node:path";
import { type Config, parseConfig } from "./config.ts";
import { flushLogs, setupLogging } from "../logging/logging.ts";
import {
  hasNetPermission,
  missingPermissions,
  netPermissionMessage,
  readEnvIfAllowed,
} from "./permissions.ts";
import { type AdminServer, serveAdmin } from "../admin/server.ts";
import { serve, type UpcaseServer } from "../server/serve.ts";
import { wireReload, wireSignals } from "./signals.ts";
import { superviseFromConfig } from "./supervise.ts";
import { SupervisorLink } from "../supervisor/worker.ts";
import { isCompiled, takeWorkerId } from "../supervisor/worker_command.ts";
import { describeStartupError } from "./startup_error.ts";
import { readTlsFiles, type TlsPem } from "../tls/pem.ts";
import {
  claimSocketPath,
  type SocketClaim,
} from "../transport/deno/unix_socket.ts";
import { usage } from "./usage.ts";
import { VERSION } from "../common/version.ts";
import { errorMessage } from "../common/error_message.ts";

const log = getLogger(["upcase", "main"]);

function printLine(stream: typeof Deno.stdout, line: string): void {
  let bytes = new TextEncoder().encode(`${line}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

async function main(commandLine: string[]): Promise<number> {
  // Set when the supervisor of --workers started this process.
  const { id: workerId, args } = takeWorkerId(commandLine);
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
  const { tlsCert, tlsKey } = config;
  // Absolute, as Deno's unix: net permissions and its UnixAddr have it.
  const unixPath = config.unix === undefined ? undefined : resolve(config.unix);
  // A worker of --workers serves no admin endpoint: the supervisor's
  // reports for it.
  const admin = workerId === undefined ? config.admin : undefined;
  const denied = [
    ...(unixPath === undefined ? [config.host] : []),
    ...(admin ? [admin.hostname] : []),
  ].find((host) => !hasNetPermission(host));
  if (denied !== undefined) {
    const compiled = isCompiled({
      execPath: Deno.execPath(),
      mainModule: Deno.mainModule,
    });
    printLine(
      Deno.stderr,
      `upcase: ${netPermissionMessage(denied, compiled)}`,
    );
    return 1;
  }
  const tlsFiles = tlsCert !== undefined && tlsKey !== undefined
    ? [tlsCert, tlsKey] as [string, string]
    : undefined;
  const missing = missingPermissions({
    ...(tlsFiles ? { tlsFiles } : {}),
    ...(unixPath !== undefined ? { unixPath } : {}),
  });
  if (missing !== undefined) {
    printLine(Deno.stderr, `upcase: ${missing}`);
    return 1;
  }
  setupLogging({ level: config.logLevel, format: config.logFormat });
  if (config.workers > 1 && workerId === undefined) {
    return await superviseFromConfig(config, args);
  }

  let pem: TlsPem | undefined;
  if (tlsFiles) {
    try {
      const loaded = await readTlsFiles(...tlsFiles);
      pem = { cert: loaded.cert, key: loaded.key };
      log.info("using the TLS certificate {subject}, valid until {validTo}", {
        subject: loaded.info.subject,
        validTo: loaded.info.validTo.toISOString(),
      });
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      printLine(Deno.stderr, `upcase: ${err.message}`);
      return 1;
    }
  }
  let claim: SocketClaim | undefined;
  if (unixPath !== undefined) {
    try {
      claim = await claimSocketPath(unixPath);
    } catch (err) {
      const message = describeStartupError(err, { path: unixPath });
      printLine(Deno.stderr, `upcase: ${message}`);
      return 1;
    }
    if (claim.removedStale) {
      log.info("removed the stale socket file {path}", { path: unixPath });
    }
  }
  // Held until main returns, after the server has stopped listening.
  using _claim = claim;

  // Wired before the server listens, so that a signal sent as soon as it
  // reports ready is not met by the default action.
  const stop = new AbortController();
  let server: UpcaseServer | undefined;
  // A Unix socket's file goes when the listener closes, which is the first
  // step of every shutdown, so a second signal's exit finds it gone too.
  const unwireSignals = wireSignals(() => stop.abort(), config.drainTimeout);
  // A worker of --workers reloads when its supervisor says so, and only
  // then: a SIGHUP sent to the whole process group reaches it too.
  const reloader = tlsFiles
    ? wireReload(async () => {
      try {
        const loaded = await readTlsFiles(...tlsFiles);
        await server?.reloadTls({ cert: loaded.cert, key: loaded.key });
      } catch (err) {
        log.error(
          "TLS reload failed; still using the previous certificate: {error}",
          { error: errorMessage(err) },
        );
      }
    }, { bySignal: workerId === undefined })
    : undefined;
  // A worker of --workers: its supervisor tells it to stop and to reload,
  // keeps the whole server's connection limits, and pings it.
  const link = workerId === undefined ? undefined : new SupervisorLink({
    onStop: () => stop.abort(),
    onGone: () => stop.abort(),
    ...(reloader ? { onReload: () => reloader.reload() } : {}),
  });
  const unwire = () => {
    reloader?.unwire();
    unwireSignals();
  };
  const common = {
    signal: stop.signal,
    unicode: config.unicode,
    drainTimeout: config.drainTimeout * 1000,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    ipv6Prefix: config.ipv6Prefix,
    idleTimeout: config.idleTimeout * 1000,
    handshakeTimeout: config.handshakeTimeout * 1000,
    proxyProtocol: config.proxyProtocol,
    proxyTrusted: config.proxyTrusted,
    // Only a limit that is set costs the workers a message per connection.
    ...(link && (config.maxConnections > 0 || config.maxConnectionsPerIp > 0)
      ? { sharedLimits: link.limits(config) }
      : {}),
  };
  try {
    server = unixPath !== undefined
      ? serve({ ...common, path: unixPath })
      : serve({
        ...common,
        hostname: config.host,
        port: config.port,
        ...(pem ?? {}),
        // Workers share the supervisor's port.
        reusePort: workerId !== undefined,
      });
  } catch (err) {
    const addr = unixPath !== undefined
      ? { path: unixPath }
      : { hostname: config.host, port: config.port };
    printLine(Deno.stderr, `upcase: ${describeStartupError(err, addr)}`);
    unwire();
    return 1;
  }
  const serving = server;
  link?.ready(() => serving.stats());
  // Not tied to `stop`: the admin endpoint keeps answering through the
  // drain, so that /readyz can report it, and stops once the server has.
  let adminServer: AdminServer | undefined;
  if (admin !== undefined) {
    try {
      adminServer = serveAdmin({ ...admin, server });
    } catch (err) {
      printLine(
        Deno.stderr,
        `upcase: ${describeStartupError(err, admin)} (--admin)`,
      );
      await server.shutdown();
      unwire();
      return 1;
    }
  }
  try {
    await server.finished;
    return 0;
  } catch (err) {
    log.fatal("stopped: accepting connections failed: {error}", {
      error: errorMessage(err),
    });
    return 1;
  } finally {
    await adminServer?.shutdown();
    unwire();
  }
}

/**
 * Runs the upcase command with `args` to the end, and flushes the logs.
 *
 * @param args The command line, without the program.
 * @returns the exit code: 0, 1 when it could not start or accepting failed,
 * 2 for a bad option.
 */
export async function runCli(args: string[]): Promise<number> {
  const code = await main(args);
  await flushLogs();
  return code;
}
