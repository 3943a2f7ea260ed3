/**
 * Upcase peer: the node_data.mjs code, `node:net` with a 'data' handler,
 * run under Deno.
 *
 * Usage: deno run --allow-net bench/peers/deno_node_net.ts PORT
 *
 * @module
 */
// deno-lint-ignore-file no-console
import type { Buffer } from "node:buffer";
import net from "node:net";

function upper(buf: Buffer): Buffer {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (b >= 0x61 && b <= 0x7a) buf[i] = b - 0x20;
  }
  return buf;
}

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on("data", (chunk: Buffer) => socket.write(upper(chunk)));
  // allowHalfOpen keeps our side open after the client's FIN; end() sends
  // ours once everything queued so far is written.
  socket.on("end", () => socket.end());
  // ECONNRESET, EPIPE: drop this connection, keep the server.
  socket.on("error", () => socket.destroy());
});

server.listen(Number(Deno.args[0] ?? 0), "127.0.0.1", () => {
  console.log(`listening ${(server.address() as net.AddressInfo).port}`);
});
