/**
 * The upcase command: reads the configuration, sets up logging, serves, and
 * turns SIGINT and SIGTERM into a graceful shutdown and SIGHUP into a TLS
 * certificate reload. The only module that touches the process.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { resolve } from "node:path";
import { type Config, type HostPort, parseConfig } from "./config.ts";
import { printLine } from "./print_line.ts";
import { serveOptionsFromConfig } from "./serve_options.ts";
import { flushLogs, setupLogging } from "../logging/logging.ts";
import {
  hasNetPermission,
  missingPermissions,
  netPermissionMessage,
  readEnvIfAllowed,
} from "./permissions.ts";
import { type AdminServer, serveAdmin } from "../admin/server.ts";
import { startServer, type UpcaseServer } from "../server/serve.ts";
import { type Reloader, wireReload, wireSignals } from "./signals.ts";
import { superviseFromConfig } from "./supervise.ts";
import { SupervisorLink } from "../supervisor/worker.ts";
import { isCompiled, takeWorkerId } from "./worker_command.ts";
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

// A start-up failure: the line for stderr and the exit code.
class Exit {
  constructor(readonly code: number, readonly line?: string) {}
}

// What the command serves, once the config and the permissions are checked.
interface Plan {
  config: Config;
  // Set when the supervisor of --workers started this process.
  workerId: number | undefined;
  // Absolute, as Deno's unix: net permissions and its UnixAddr have it.
  unixPath: string | undefined;
  admin: HostPort | undefined;
  tlsFiles: [string, string] | undefined;
}

async function main(commandLine: string[]): Promise<number> {
  const { id: workerId, args } = takeWorkerId(commandLine);
  try {
    const config = readConfig(args);
    const plan = checkPermissions(config, workerId);
    setupLogging({ level: config.logLevel, format: config.logFormat });
    if (config.workers > 1 && workerId === undefined) {
      return await superviseFromConfig(config, args);
    }
    return await runServer(plan);
  } catch (err) {
    if (!(err instanceof Exit)) throw err;
    if (err.line !== undefined) {
      printLine(err.code === 0 ? Deno.stdout : Deno.stderr, err.line);
    }
    return err.code;
  }
}

function readConfig(args: string[]): Config {
  let config: Config;
  try {
    config = parseConfig(args, readEnvIfAllowed);
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    throw new Exit(2, `upcase: ${err.message}`);
  }
  if (config.help) throw new Exit(0, usage());
  if (config.version) throw new Exit(0, `upcase ${VERSION}`);
  return config;
}

function checkPermissions(config: Config, workerId: number | undefined): Plan {
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
    throw new Exit(1, `upcase: ${netPermissionMessage(denied, compiled)}`);
  }
  const { tlsCert, tlsKey } = config;
  const tlsFiles = tlsCert !== undefined && tlsKey !== undefined
    ? [tlsCert, tlsKey] as [string, string]
    : undefined;
  const missing = missingPermissions({
    ...(tlsFiles ? { tlsFiles } : {}),
    ...(unixPath !== undefined ? { unixPath } : {}),
  });
  if (missing !== undefined) throw new Exit(1, `upcase: ${missing}`);
  return { config, workerId, unixPath, admin, tlsFiles };
}

async function loadPem(tlsFiles: [string, string]): Promise<TlsPem> {
  try {
    const loaded = await readTlsFiles(...tlsFiles);
    log.info("using the TLS certificate {subject}, valid until {validTo}", {
      subject: loaded.info.subject,
      validTo: loaded.info.validTo.toISOString(),
    });
    return { cert: loaded.cert, key: loaded.key };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new Exit(1, `upcase: ${err.message}`);
  }
}

async function claimSocket(path: string): Promise<SocketClaim> {
  let claim: SocketClaim;
  try {
    claim = await claimSocketPath(path);
  } catch (err) {
    throw new Exit(1, `upcase: ${describeStartupError(err, { path })}`);
  }
  if (claim.removedStale) {
    log.info("removed the stale socket file {path}", { path });
  }
  return claim;
}

async function runServer(plan: Plan): Promise<number> {
  const pem = plan.tlsFiles ? await loadPem(plan.tlsFiles) : undefined;
  // Held until the server has stopped listening.
  using _claim = plan.unixPath === undefined
    ? undefined
    : await claimSocket(plan.unixPath);
  // Wired before the server listens, so that a signal sent as soon as it
  // reports ready is not met by the default action.
  using controls = new Controls(plan);
  const server = await launch(plan, { controls, pem });
  controls.server = server;
  controls.link?.ready(() => server.stats());
  // Not tied to the stop signal: the admin endpoint keeps answering through
  // the drain, so that /readyz can report it, and stops once the server has.
  let adminServer: AdminServer | undefined;
  if (plan.admin !== undefined) {
    try {
      adminServer = serveAdmin({ ...plan.admin, server });
    } catch (err) {
      const line = `upcase: ${describeStartupError(err, plan.admin)} (--admin)`;
      printLine(Deno.stderr, line);
      await server.shutdown();
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
  }
}

// What stops and reloads the server: signals, and for a worker of
// --workers its supervisor, which also keeps the whole server's limits.
class Controls implements Disposable {
  readonly stop = new AbortController();
  readonly link: SupervisorLink | undefined;
  server: UpcaseServer | undefined;
  readonly #unwireSignals: () => void;
  readonly #reloader: Reloader | undefined;

  constructor(plan: Plan) {
    const { config, workerId, tlsFiles } = plan;
    // A Unix socket's file goes when the listener closes, which is the
    // first step of every shutdown, so a second signal's exit finds it gone.
    this.#unwireSignals = wireSignals({
      stop: (signal) => {
        log.info("received {signal}; draining for up to {seconds} s", {
          signal,
          seconds: config.drainTimeout,
        });
        this.stop.abort();
      },
      stopNow: (signal) =>
        log.warning("received {signal} again; exiting now", { signal }),
    });
    // A worker reloads when its supervisor says so, and only then: a SIGHUP
    // sent to the whole process group reaches it too.
    this.#reloader = tlsFiles
      ? wireReload(() => this.#reload(tlsFiles), {
        bySignal: workerId === undefined,
      })
      : undefined;
    const reloader = this.#reloader;
    this.link = workerId === undefined ? undefined : new SupervisorLink({
      onStop: () => this.stop.abort(),
      onGone: () => this.stop.abort(),
      ...(reloader ? { onReload: () => reloader.reload() } : {}),
    });
  }

  async #reload(tlsFiles: [string, string]): Promise<void> {
    try {
      const loaded = await readTlsFiles(...tlsFiles);
      await this.server?.reloadTls({ cert: loaded.cert, key: loaded.key });
    } catch (err) {
      log.error(
        "TLS reload failed; still using the previous certificate: {error}",
        { error: errorMessage(err) },
      );
    }
  }

  [Symbol.dispose](): void {
    this.#reloader?.unwire();
    this.#unwireSignals();
  }
}

async function launch(
  plan: Plan,
  parts: { controls: Controls; pem: TlsPem | undefined },
): Promise<UpcaseServer> {
  const { config, unixPath, workerId } = plan;
  const { link, stop } = parts.controls;
  const common = {
    ...serveOptionsFromConfig(config),
    signal: stop.signal,
    // Only a limit that is set costs the workers a message per connection.
    ...(link && (config.maxConnections > 0 || config.maxConnectionsPerIp > 0)
      ? { sharedLimits: link.limits(config) }
      : {}),
  };
  try {
    return unixPath !== undefined
      ? await startServer({ ...common, path: unixPath })
      : await startServer({
        ...common,
        hostname: config.host,
        port: config.port,
        ...(parts.pem ?? {}),
        // Workers share the supervisor's port.
        reusePort: workerId !== undefined,
      });
  } catch (err) {
    const addr = unixPath !== undefined
      ? { path: unixPath }
      : { hostname: config.host, port: config.port };
    throw new Exit(1, `upcase: ${describeStartupError(err, addr)}`);
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
