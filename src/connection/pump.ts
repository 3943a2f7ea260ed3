import { BufferPool } from "./buffer_pool.ts";
import { simdMemory } from "../kernels/upcase_ascii.ts";
import type { Upcaser } from "./upcaser.ts";
import type { Conn } from "../transport/types.ts";

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
   * The size of a read that may wait: the first one, and any after a read
   * that did not fill its buffer. An idle connection holds a buffer this
   * big while its read waits.
   *
   * @default {512}
   */
  minBuffer?: number;
  /**
   * The most a connection holds at once: the buffer of a read after a read
   * that filled its buffer (or, when the upcaser may grow its output, a
   * power of two that leaves room for that), and the buffer a slow write
   * pins.
   *
   * @default {65536}
   */
  maxBuffer?: number;
}

let defaultPool: BufferPool | undefined;

/**
 * Serves one connection: reads, uppercases and writes back each chunk, until
 * the client ends its input; then writes what the upcaser held back. It
 * does not close the connection, and it rejects when a read or write fails.
 *
 * There is one read or one write in flight at a time, so a client that does
 * not read stalls its own reads, and the server holds one buffer per
 * connection, at most `maxBuffer`. A read that fills its buffer means more
 * is waiting, so the next read is large; any other read means the client
 * has paused, and the next read, which may wait for a long time, is small
 * again: a connection that carried bulk data and went idle costs what one
 * that never did costs.
 *
 * In unicode mode the output can be three times the input
 * ({@linkcode Upcaser.maxGrowth}): reads are kept small enough for the
 * output to fit `maxBuffer`, and output that does not lie in the read
 * buffer is copied into a pooled buffer at once, so that the read buffer
 * goes back to the pool and a slow write pins a pooled buffer, never a
 * fresh array.
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
 * import { pumpConn } from "./pump.ts";
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
  conn: Conn,
  options: PumpOptions,
): Promise<void> {
  const { upcaser } = options;
  const pool = options.pool ?? (defaultPool ??= new BufferPool(
    { arena: simdMemory() },
  ));
  const minBuffer = options.minBuffer ?? 512;
  const maxBuffer = options.maxBuffer ?? 65536;
  const maxRead = Math.max(
    minBuffer,
    2 ** Math.floor(Math.log2(maxBuffer / upcaser.maxGrowth)),
  );
  if (options.initial && options.initial.length > 0) {
    await writeAll(conn, upcaser.push(options.initial));
  }
  for (let size = minBuffer;;) {
    const buffer = pool.take(size);
    let held = buffer;
    try {
      const n = await conn.read(buffer);
      if (n === null) break;
      size = n === buffer.length ? maxRead : minBuffer;
      let out = upcaser.push(
        n === buffer.length ? buffer : buffer.subarray(0, n),
      );
      if (out.length > 0 && !startsAt(out, buffer)) {
        held = pool.take(out.length);
        held.set(out);
        const copy = held.subarray(0, out.length);
        release(out);
        out = copy;
        pool.give(buffer);
      }
      await writeAll(conn, out);
    } finally {
      pool.give(held);
    }
  }
  await writeAll(conn, upcaser.finish());
}

/**
 * Frees an array the upcaser made for its output, now copied, at once: left
 * to the garbage collector, thousands of them would pile up until its next
 * full collection, which an idle server does not run, and the allocator
 * would keep their pages after that.
 */
function release(out: Uint8Array): void {
  const { buffer } = out;
  if (
    buffer instanceof ArrayBuffer && out.byteOffset === 0 &&
    out.length === buffer.byteLength
  ) {
    buffer.transfer(0);
  }
}

/** Whether `view` is a view from the start of `buffer`: output made in place. */
function startsAt(view: Uint8Array, buffer: Uint8Array): boolean {
  return view.buffer === buffer.buffer && view.byteOffset === buffer.byteOffset;
}

async function writeAll(conn: Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await conn.write(done === 0 ? bytes : bytes.subarray(done));
  }
}
