import { NET_PERMISSION_MESSAGE } from "./startup_error.ts";
import { socketLockPath } from "../transport/deno/unix_socket.ts";

/**
 * The hosts that `deno task compile` lets the binary listen on: every
 * address, and loopback. Deno cannot tell listening from connecting, so
 * these are also the only hosts the binary could connect to. The task's
 * `--allow-net` must list exactly these; a test checks.
 */
export const COMPILED_NET_HOSTS: readonly string[] = [
  "0.0.0.0",
  "[::]",
  "127.0.0.1",
  "[::1]",
  "localhost",
];
/**
 * Reads an environment variable if permission to read it was granted, and
 * otherwise treats it as unset, so that `--allow-env` stays optional and no
 * prompt interrupts the start.
 *
 * @param name The variable's name.
 * @returns its value, or `undefined` when it is unset or not readable.
 */
export function readEnvIfAllowed(name: string): string | undefined {
  const { state } = Deno.permissions.querySync({ name: "env", variable: name });
  return state === "granted" ? Deno.env.get(name) : undefined;
}

/**
 * Tells whether the process may listen on `host` without a prompt.
 *
 * @param host The address to listen on.
 * @returns true when net permission for it is granted.
 */
export function hasNetPermission(host: string): boolean {
  return Deno.permissions.querySync({ name: "net", host: netHost(host) })
    .state === "granted";
}

/**
 * Writes a host as Deno's net permissions name it: an IPv6 address in
 * brackets. A bare one is refused with a URIError once `--allow-net` lists
 * hosts, as the compiled binary's does.
 *
 * @param host A name, an IPv4 address, or an IPv6 address with or without
 * brackets.
 * @returns the host for a permission query or an `--allow-net` list.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { netHost } from "./permissions.ts";
 *
 * assertEquals([netHost("::"), netHost("[::1]"), netHost("0.0.0.0")], ["[::]", "[::1]", "0.0.0.0"]);
 * ```
 */
export function netHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * The line for a start that may not listen on `host`. Under `deno run` it
 * names the flag; a compiled binary was given its hosts when it was built,
 * so it names them and says how to build one for `host`.
 *
 * @param host The address upcase may not listen on.
 * @param compiled Whether this is a `deno compile` binary.
 * @returns the line, without "upcase: " in front.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { netPermissionMessage } from "./permissions.ts";
 *
 * assertEquals(
 *   netPermissionMessage("10.0.0.5", true),
 *   'Listening on "10.0.0.5" is not allowed: this binary was compiled to listen only on 0.0.0.0, [::], 127.0.0.1, [::1], localhost; use one of them, or compile it with --allow-net=10.0.0.5',
 * );
 * ```
 */
export function netPermissionMessage(host: string, compiled: boolean): string {
  if (!compiled) return NET_PERMISSION_MESSAGE;
  return `Listening on "${host}" is not allowed: this binary was compiled to listen only on ${
    COMPILED_NET_HOSTS.join(", ")
  }; use one of them, or compile it with --allow-net=${netHost(host)}`;
}

/** What a start needs beyond listening on TCP. */
export interface PermissionNeeds {
  /** The TLS certificate and key files, which are read at start and on SIGHUP. */
  tlsFiles?: [cert: string, key: string];
  /** An absolute Unix socket path, which needs net, read and write access. */
  unixPath?: string;
}

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(descriptor).state === "granted";
}

/**
 * Tells which permission is missing for the TLS files or the Unix socket,
 * as one line that names the flags to add. A whole group is named when part
 * of it is missing, so that the line can be copied as it is.
 *
 * @param needs The TLS files and the Unix socket path, when they are used.
 * @returns the line, or undefined when everything is granted.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { missingPermissions } from "./permissions.ts";
 *
 * // The doc tests run with --allow-read.
 * assertEquals(missingPermissions({ tlsFiles: ["cert.pem", "key.pem"] }), undefined);
 * ```
 */
export function missingPermissions(needs: PermissionNeeds): string | undefined {
  const { tlsFiles, unixPath } = needs;
  if (unixPath !== undefined) {
    // The socket, and the lock file that guards it (see unix_socket.ts).
    const paths = [unixPath, socketLockPath(unixPath)];
    const all = (name: "read" | "write") =>
      paths.every((path) => granted({ name, path }));
    const flags = [
      granted({ name: "net", host: `unix:${unixPath}` })
        ? ""
        : `--allow-net=unix:${unixPath}`,
      all("read") ? "" : `--allow-read=${paths.join(",")}`,
      all("write") ? "" : `--allow-write=${paths.join(",")}`,
    ].filter((flag) => flag !== "");
    if (flags.length > 0) {
      return `Listening on unix:${unixPath} is not allowed: run with ${
        flags.join(" ")
      }`;
    }
  }
  if (tlsFiles && !tlsFiles.every((path) => granted({ name: "read", path }))) {
    return `Reading the TLS certificate and key is not allowed: run with --allow-read=${
      tlsFiles.join(",")
    }`;
  }
  return undefined;
}
