/**
 * Upcase peer: `Deno.listen` with a read/write loop on each connection.
 *
 * Usage: deno run --allow-net bench/peers/deno_raw.ts PORT [BUFFER_BYTES]
 *
 * @module
 */
// deno-lint-ignore-file no-console

const BUFFER_BYTES = Number(Deno.args[1] ?? 64 * 1024);

async function handle(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(BUFFER_BYTES);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (let i = 0; i < n; i++) {
        const b = buf[i]!;
        if (b >= 0x61 && b <= 0x7a) buf[i] = b - 0x20;
      }
      let written = 0;
      while (written < n) {
        written += await conn.write(buf.subarray(written, n));
      }
    }
    // The client half-closed and everything is echoed: send our FIN.
    await conn.closeWrite();
  } catch {
    // ECONNRESET, EPIPE: drop this connection, keep the server.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
});
console.log(`listening ${listener.addr.port}`);
while (true) {
  let conn: Deno.Conn;
  try {
    conn = await listener.accept();
  } catch (err) {
    if (err instanceof Deno.errors.BadResource) break; // listener closed
    continue; // e.g. an aborted handshake or EMFILE: keep accepting
  }
  // Not awaited: each connection runs on its own.
  handle(conn);
}
