import { ENV_NAMES } from "./config.ts";
import { netHost } from "./permissions.ts";
import { V8_FLAGS } from "./v8_flags.ts";

/** The hidden first argument that makes the program run as worker N. */
export const WORKER_FLAG = "--upcase-worker";

/** A command line to start one worker. */
export interface WorkerCommand {
  /** The executable: deno, or the compiled binary itself. */
  command: string;
  /** Everything after the executable. */
  args: string[];
}

/** What {@linkcode workerCommand} needs to know about this process. */
export interface Runtime {
  /** `Deno.execPath()`. */
  execPath: string;
  /** `Deno.mainModule`. */
  mainModule: string;
  /** `Deno.permissions.querySync`. */
  query: (descriptor: Deno.PermissionDescriptor) => Deno.PermissionStatus;
}

/**
 * Whether this program is a `deno compile` binary rather than a script
 * under `deno run`. Deno has no API for it, so it looks at two signs: the
 * executable is not called `deno`, or the main module lives in the
 * binary's embedded file system (`/deno-compile-…`).
 *
 * @param runtime The executable's path and the main module.
 * @returns true for a compiled binary.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isCompiled } from "./worker_command.ts";
 *
 * assertEquals(isCompiled({ execPath: "/usr/bin/deno", mainModule: "file:///app/main.ts" }), false);
 * assertEquals(isCompiled({ execPath: "/opt/upcase", mainModule: "file:///app/main.ts" }), true);
 * ```
 */
export function isCompiled(
  runtime: Pick<Runtime, "execPath" | "mainModule">,
): boolean {
  const base = runtime.execPath.split(/[\\/]/).pop() ?? "";
  return !/^deno(\.exe)?$/.test(base) ||
    runtime.mainModule.includes("/deno-compile-");
}

// A worker gets no more than the supervisor was granted, and of the network
// only the address it listens on: it serves no admin endpoint, and
// connects nowhere.
function permissionFlags(
  query: Runtime["query"],
  paths: { readPaths: string[]; listenHost: string },
): string[] {
  const { readPaths, listenHost } = paths;
  const granted = (d: Deno.PermissionDescriptor) =>
    query(d).state === "granted";
  const flags = [`--allow-net=${netHost(listenHost)}`];
  if (granted({ name: "env" })) flags.push("--allow-env");
  else {
    const names = ENV_NAMES.filter((variable) =>
      granted({ name: "env", variable })
    );
    if (names.length > 0) flags.push(`--allow-env=${names.join(",")}`);
  }
  if (granted({ name: "read" })) flags.push("--allow-read");
  else {
    const paths = readPaths.filter((path) => granted({ name: "read", path }));
    if (paths.length > 0) flags.push(`--allow-read=${paths.join(",")}`);
  }
  return flags;
}

/**
 * Builds the command line that starts worker `id`: this same program, with
 * the hidden {@linkcode WORKER_FLAG} first and then `args`. Under `deno run`
 * that is deno with `run`, upcase's V8 flags, `--unstable-net` (SO_REUSEPORT
 * needs it in Deno 2.9), network access to the address it listens on, what
 * this process was granted of the environment and the TLS files, and the
 * script; a compiled binary carries its flags inside, so it gets only the
 * arguments.
 *
 * @param id The worker's id, from 1.
 * @param options The worker's arguments, the host it listens on, files it
 * must read, and this process's runtime.
 * @returns the command and its arguments.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { workerCommand } from "./worker_command.ts";
 *
 * const cmd = workerCommand(2, {
 *   args: ["--port", "8000"],
 *   listenHost: "::",
 *   runtime: {
 *     execPath: "/usr/bin/deno",
 *     mainModule: "file:///app/main.ts",
 *     query: ({ name }) => ({ state: name === "net" ? "granted" : "prompt" }) as Deno.PermissionStatus,
 *   },
 * });
 * assertEquals(cmd.args, ["run", "--v8-flags=--max-semi-space-size=4", "--unstable-net", "--allow-net=[::]", "/app/main.ts", "--upcase-worker=2", "--port", "8000"]);
 * ```
 */
export function workerCommand(
  id: number,
  options: {
    args: string[];
    listenHost: string;
    readPaths?: string[];
    runtime?: Runtime;
  },
): WorkerCommand {
  const {
    args,
    listenHost,
    readPaths = [],
    runtime = {
      execPath: Deno.execPath(),
      mainModule: Deno.mainModule,
      query: (d) => Deno.permissions.querySync(d),
    },
  } = options;
  const own = [`${WORKER_FLAG}=${id}`, ...args];
  if (isCompiled(runtime)) return { command: runtime.execPath, args: own };
  const script = runtime.mainModule.startsWith("file:")
    ? decodeURIComponent(new URL(runtime.mainModule).pathname)
    : runtime.mainModule;
  return {
    command: runtime.execPath,
    args: [
      "run",
      V8_FLAGS,
      "--unstable-net",
      ...permissionFlags(runtime.query, { readPaths, listenHost }),
      script,
      ...own,
    ],
  };
}

/**
 * Takes the hidden worker flag off the front of the arguments.
 *
 * @param args The program's arguments.
 * @returns the worker's id (undefined when this is no worker) and the other arguments.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { takeWorkerId } from "./worker_command.ts";
 *
 * assertEquals(takeWorkerId(["--upcase-worker=3", "--port", "80"]), { id: 3, args: ["--port", "80"] });
 * assertEquals(takeWorkerId(["--port", "80"]), { id: undefined, args: ["--port", "80"] });
 * ```
 */
export function takeWorkerId(
  args: string[],
): { id: number | undefined; args: string[] } {
  const m = /^--upcase-worker=([1-9][0-9]*)$/.exec(args[0] ?? "");
  return m
    ? { id: Number(m[1]), args: args.slice(1) }
    : { id: undefined, args };
}
