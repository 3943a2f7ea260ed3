/**
 * Upcase peer: the naive web-streams version, piping each connection's
 * readable through a TransformStream into its writable.
 *
 * Usage: deno run --allow-net bench/peers/deno_streams.ts PORT
 *
 * @module
 */
// deno-lint-ignore-file no-console

function upcase(): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (b >= 0x61 && b <= 0x7a) chunk[i] = b - 0x20;
      }
      controller.enqueue(chunk);
    },
  });
}

const listener = Deno.listen({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
});
console.log(`listening ${listener.addr.port}`);
for await (const conn of listener) {
  // Naive on purpose. conn.readable closes the whole socket when it reads
  // EOF, so nothing can be written after the client's half-close. The reply
  // still arrives whole because the pipe holds at most one chunk in flight
  // when that EOF is read, and the in-flight write keeps the socket open
  // until it finishes; the client then sees the close as our FIN.
  conn.readable.pipeThrough(upcase()).pipeTo(conn.writable).catch(() => {
    // ECONNRESET, EPIPE: drop this connection, keep the server.
  });
}
