import { BufferPool } from "./buffer_pool.ts";
import { simdMemory } from "./simd_upcase.ts";
import type { Upcaser } from "./upcaser.ts";

/** Options for {@linkcode pumpConn}. */
export interface PumpOptions {
  /** The uppercasing step; it also counts the bytes. */
  upcaser: Upcaser;
  /**
   * Bytes already read from the connection (those that followed a PROXY
   * header, say), served before the first read.
   */
  initial?: Uint8Array;
  /**
   * Where read buffers come from. By default, one pool for the process,
   * carved from the SIMD kernel's memory so that data is read, uppercased
   * and written in place there.
   */
  pool?: BufferPool;
  /**
   * The first read's buffer size, and the smallest it shrinks to. An idle
   * connection holds a buffer this big while its read waits.
   *
   * @default {512}
   */
  minBuffer?: number;
  /**
   * The largest read buffer.
   *
   * @default {65536}
   */
  maxBuffer?: number;
}

let defaultPool: BufferPool | undefined;

/** Reads in a row that used a quarter of the buffer or less, before it shrinks. */
const SHRINK_AFTER = 8;

/**
 * Serves one connection: reads, uppercases and writes back each chunk, until
 * the client ends its input; then writes what the upcaser held back. It
 * does not close the connection, and it rejects when a read or write fails.
 *
 * There is one read or one write in flight at a time, so a client that does
 * not read stalls its own reads: the server holds at most one buffer per
 * connection. The buffer starts small, grows four times when a read fills
 * it, and shrinks after {@linkcode SHRINK_AFTER} reads that used a quarter
 * of it or less, so idle connections stay small and bulk transfers use large
 * reads.
 *
 * It reads with `conn.read` rather than `conn.readable`: Deno's stream
 * closes the whole socket at end of input, which would lose the replies
 * still owed to a client that half-closed.
 *
 * @param conn The connection.
 * @param options The upcaser, the buffer pool and buffer sizes.
 *
 * @example Serve a half-closing client
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { pumpConn } from "./conn_pump.ts";
 * import { Upcaser } from "./upcaser.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using server = await listener.accept();
 * await client.write(new TextEncoder().encode("abc"));
 * await client.closeWrite();
 * await pumpConn(server, { upcaser: new Upcaser() });
 * const reply = new Uint8Array(3);
 * assertEquals(await client.read(reply), 3);
 * assertEquals(new TextDecoder().decode(reply), "ABC");
 * ```
 */
export async function pumpConn(
  conn: Deno.Conn,
  options: PumpOptions,
): Promise<void> {
  const { upcaser } = options;
  const pool = options.pool ?? (defaultPool ??= new BufferPool(
    { arena: simdMemory() },
  ));
  const minBuffer = options.minBuffer ?? 512;
  const maxBuffer = options.maxBuffer ?? 65536;
  let size = minBuffer;
  let smallReads = 0;
  if (options.initial && options.initial.length > 0) {
    await writeAll(conn, upcaser.push(options.initial));
  }
  for (;;) {
    const buffer = pool.take(size);
    try {
      const n = await conn.read(buffer);
      if (n === null) break;
      await writeAll(conn, upcaser.push(buffer.subarray(0, n)));
      if (n === buffer.length) {
        size = Math.min(buffer.length * 4, maxBuffer);
        smallReads = 0;
      } else if (n > buffer.length / 4) {
        smallReads = 0;
      } else if (++smallReads >= SHRINK_AFTER) {
        size = Math.max(buffer.length / 4, minBuffer);
        smallReads = 0;
      }
    } finally {
      pool.give(buffer);
    }
  }
  await writeAll(conn, upcaser.finish());
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await conn.write(done === 0 ? bytes : bytes.subarray(done));
  }
}
