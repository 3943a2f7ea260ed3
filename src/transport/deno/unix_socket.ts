/** A Unix socket path taken for one server, as {@linkcode claimSocketPath} returns it. */
export interface SocketClaim extends Disposable {
  /** True when a stale socket file was removed to make room. */
  removedStale: boolean;
}

/**
 * The lock file that guards a socket path: `PATH.lock`, beside it.
 *
 * @param path The socket's path.
 * @returns the lock file's path.
 */
export function socketLockPath(path: string): string {
  return `${path}.lock`;
}

/**
 * Takes `path` for a new Unix socket, atomically with respect to other
 * upcase servers: an exclusive lock on `PATH.lock` is held from before the
 * check until the claim is disposed, which the server does when it stops.
 * Without it, two servers starting on the same stale path could both find
 * it stale, and the second could remove the first one's fresh socket and
 * leave it listening on a file nobody can reach. The lock file is left in
 * place: removing it would reopen the race for the next two servers. The
 * kernel drops the lock when the process ends, even by SIGKILL.
 *
 * @param path Where the server is to listen.
 * @returns the claim; dispose of it once the server no longer listens.
 * @throws {Deno.errors.AddrInUse} when another server holds the lock or
 * listens on `path`.
 * @throws {Deno.errors.AlreadyExists} when `path` is not a socket.
 *
 * @example A path is claimed by one server at a time
 * ```ts
 * import { assertEquals, assertRejects } from "@std/assert";
 * import { claimSocketPath } from "./unix_socket.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/upcase.sock`;
 * {
 *   using claim = await claimSocketPath(path);
 *   assertEquals(claim.removedStale, false);
 *   await assertRejects(() => claimSocketPath(path), Deno.errors.AddrInUse);
 * }
 * using again = await claimSocketPath(path);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function claimSocketPath(path: string): Promise<SocketClaim> {
  const lock = await Deno.open(socketLockPath(path), {
    read: true,
    write: true,
    create: true,
  });
  try {
    if (!(await lock.tryLock(true))) {
      throw new Deno.errors.AddrInUse(
        `Cannot listen on "${path}": another server holds ${
          socketLockPath(path)
        }`,
      );
    }
    const removedStale = await clearStaleSocket(path);
    return { removedStale, [Symbol.dispose]: () => lock.close() };
  } catch (err) {
    lock.close();
    throw err;
  }
}

/**
 * Makes `path` ready for a new Unix socket. A socket file that nobody
 * listens on, as a killed server leaves behind, is removed; a live socket
 * or any other kind of file is left alone, and the start fails.
 *
 * A connect tells the two kinds of socket file apart: a live server accepts
 * it (and sees one empty connection), a stale file refuses it.
 *
 * @param path Where the server is to listen.
 * @returns true when it removed a stale socket file, false when the path was free.
 * @throws {Deno.errors.AddrInUse} when a server listens on `path`.
 * @throws {Deno.errors.AlreadyExists} when `path` is not a socket.
 *
 * @example A free path, and a path that holds another kind of file
 * ```ts
 * import { assertEquals, assertRejects } from "@std/assert";
 * import { clearStaleSocket } from "./unix_socket.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/upcase.sock`;
 * assertEquals(await clearStaleSocket(path), false);
 * await Deno.writeTextFile(path, "not a socket");
 * await assertRejects(() => clearStaleSocket(path), Deno.errors.AlreadyExists);
 * assertEquals(await Deno.readTextFile(path), "not a socket");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function clearStaleSocket(path: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (!info.isSocket) {
    throw new Deno.errors.AlreadyExists(
      `Cannot listen on "${path}": it exists and is not a socket`,
    );
  }
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    if (!(err instanceof Deno.errors.ConnectionRefused)) throw err;
    await Deno.remove(path);
    return true;
  }
  conn.close();
  throw new Deno.errors.AddrInUse(
    `Cannot listen on "${path}": a running server listens on it`,
  );
}
