/**
 * The bytes that arrive on a connection, as a stream that leaves the
 * connection open at the end of input. Deno's own `conn.readable` closes the
 * whole socket when it reads EOF, so when a client half-closes, replies still
 * queued for it would fail with "Bad resource ID" and be lost.
 *
 * It reads only when the consumer asks (no read-ahead), so backpressure holds.
 *
 * @param conn The connection; the caller closes it.
 * @param chunkSize Bytes per read.
 * @returns a stream of received chunks that ends at EOF.
 *
 * @example Write after the client half-closed
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readableFromConn } from "./conn_readable.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using server = await listener.accept();
 * await client.write(new Uint8Array([1, 2, 3]));
 * await client.closeWrite();
 * const received = await new Response(readableFromConn(server)).arrayBuffer();
 * assertEquals(received.byteLength, 3);
 * assertEquals(await server.write(new Uint8Array([4])), 1);
 * ```
 */
export function readableFromConn(
  conn: Deno.Conn,
  chunkSize = 64 * 1024,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(chunkSize);
      const n = await conn.read(buffer);
      if (n === null) controller.close();
      else controller.enqueue(buffer.subarray(0, n));
    },
  }, { highWaterMark: 0 });
}
