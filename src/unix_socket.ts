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
