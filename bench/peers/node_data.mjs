// Upcase peer: Node `net` with a plain 'data' handler.
// Usage: node node_data.mjs PORT   (0 picks a free port)
import net from "node:net";

function upper(buf) {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b >= 0x61 && b <= 0x7a) buf[i] = b - 0x20;
  }
  return buf;
}

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on("data", (chunk) => socket.write(upper(chunk)));
  // allowHalfOpen keeps our side open after the client's FIN; end() sends
  // ours once everything queued so far is written.
  socket.on("end", () => socket.end());
  // ECONNRESET, EPIPE: drop this connection, keep the server.
  socket.on("error", () => socket.destroy());
});

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
