// Upcase peer: Node `net` piping each socket through a stream.Transform.
// Usage: node node_transform.mjs PORT   (0 picks a free port)
import net from "node:net";
import { pipeline, Transform } from "node:stream";

function upcase() {
  return new Transform({
    transform(chunk, _encoding, callback) {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b >= 0x61 && b <= 0x7a) chunk[i] = b - 0x20;
      }
      callback(null, chunk);
    },
  });
}

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  // pipeline ends the socket after the transform flushes (half-close), and
  // destroys both on error; the callback swallows ECONNRESET and EPIPE.
  pipeline(socket, upcase(), socket, () => {});
});

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
