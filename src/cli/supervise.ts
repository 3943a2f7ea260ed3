import { getLogger } from "@logtape/logtape";
import type { Config } from "./config.ts";
import { printLine } from "./print_line.ts";
import { serveOptionsFromConfig } from "./serve_options.ts";
import { serverSettings } from "../server/options.ts";
import { listen } from "../transport/deno/listen.ts";
import { describeStartupError } from "./startup_error.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import { isCompiled, workerCommand } from "./worker_command.ts";
import { wireReload, wireSignals } from "./signals.ts";

const log = getLogger(["upcase", "supervisor"]);

function printError(line: string): void {
  printLine(Deno.stderr, `upcase: ${line}`);
}

// The workers listen with SO_REUSEPORT, which would let them share the port
// with another program that uses it too, and every worker would fail alone
// when any other program holds it; so the supervisor binds it once itself,
// without SO_REUSEPORT, to report a port in use in one line at once. Port 0
// cannot be shared either: each worker would get a port of its own, so
// this probe picks the one they all get. Another process could take it in
// between; then the workers fail to start, and the supervisor gives up
// after a few tries (MAX_START_FAILURES).
function probePort(hostname: string, port: number): number {
  const probe = listen({ transport: "tcp", hostname, port });
  const bound = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return bound;
}

// The workers are this same executable: deno under `deno run`, the binary
// itself when compiled, which may run only the path it was built for.
function runDenied(): string | undefined {
  const command = Deno.execPath();
  const { state } = Deno.permissions.querySync({ name: "run", command });
  if (state === "granted") return undefined;
  const compiled = isCompiled({
    execPath: command,
    mainModule: Deno.mainModule,
  });
  return compiled
    ? `--workers cannot start ${command}: this binary was compiled to start itself from another path only; install it at the path it was compiled for (see docs/permissions.md), or compile it with --allow-run=${command}`
    : `--workers needs --allow-run to start its worker processes (at least --allow-run=${command})`;
}

// Signals reach the workers through the supervisor, once each, however many
// processes they reached: a stop to drain, a second to kill them, and with
// TLS a SIGHUP to reload.
function wireSupervisor(
  supervisor: Supervisor,
  options: { drainSeconds: number; tls: boolean },
): () => void {
  const unwireSignals = wireSignals({
    stop: (signal) => {
      log.info(
        "received {signal}; asking {workers} workers to drain for up to {seconds} s",
        { signal, workers: supervisor.running, seconds: options.drainSeconds },
      );
      supervisor.stop(signal);
    },
    stopNow: (signal) => {
      log.warning("received {signal} again; killing the workers and exiting", {
        signal,
      });
      supervisor.kill();
    },
  });
  // Without TLS, SIGHUP keeps its default action, as for one process.
  const reloader = options.tls
    ? wireReload(() => supervisor.reload(), {
      announce: () =>
        log.info(
          "received SIGHUP; asking {workers} workers to reload the TLS certificate and key",
          { workers: supervisor.running },
        ),
    })
    : undefined;
  return () => {
    reloader?.unwire();
    unwireSignals();
  };
}

/**
 * The `--workers N` command (N > 1): checks that workers can run here, then
 * runs the supervisor, with SIGINT and SIGTERM wired to stop it and, with
 * TLS, SIGHUP to reload. Problems print one line on standard error: `--unix`
 * with workers exits 2; a platform without SO_REUSEPORT balancing, no
 * permission to run this executable again, or a port in use exits 1.
 *
 * @param config The parsed configuration.
 * @param args The command line, which each worker gets too.
 * @returns the exit code.
 */
export async function superviseFromConfig(
  config: Config,
  args: string[],
): Promise<number> {
  if (config.unix !== undefined) {
    printError(
      "Cannot use --workers with --unix: workers share a TCP port; give one or the other",
    );
    return 2;
  }
  if (Deno.build.os !== "linux") {
    printError(
      `Cannot use --workers ${config.workers} on ${Deno.build.os}: the kernel's SO_REUSEPORT load balancing that workers rely on is Linux-only; use --workers 1`,
    );
    return 1;
  }
  const denied = runDenied();
  if (denied !== undefined) {
    printError(denied);
    return 1;
  }
  let port: number;
  try {
    port = probePort(config.host, config.port);
  } catch (err) {
    const addr = { hostname: config.host, port: config.port };
    printError(describeStartupError(err, addr));
    return 1;
  }
  return await supervise(config, { args, port });
}

async function supervise(
  config: Config,
  start: { args: string[]; port: number },
): Promise<number> {
  const { args, port } = start;
  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined;
  const supervisor = new Supervisor({
    workers: config.workers,
    addr: { transport: "tcp", hostname: config.host, port },
    workerArgs: args,
    workerCommand: (id, workerArgs) =>
      workerCommand(id, {
        args: workerArgs,
        readPaths: tls ? [config.tlsCert!, config.tlsKey!] : [],
        listenHost: config.host,
      }),
    ...(config.admin ? { admin: config.admin } : {}),
    settings: serverSettings(serveOptionsFromConfig(config)),
  });
  // Before the first worker starts: a signal must not meet the default
  // action, which would leave the workers without their supervisor.
  const unwire = wireSupervisor(supervisor, {
    drainSeconds: config.drainTimeout,
    tls,
  });
  try {
    return await supervisor.run();
  } finally {
    unwire();
  }
}
