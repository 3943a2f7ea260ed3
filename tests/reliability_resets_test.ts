import { assertEquals } from "@std/assert";
import { runLoad, verifiedExchange } from "../bench/loadgen.ts";
import { recordFigure, scale } from "./_figures.ts";
import { needs, randomBytes, ServerProcess } from "./_helpers.ts";

const PYTHON = "/usr/bin/python3";
const STEADY = scale(10_000, 50_000);
const MID_STREAM = 50;
const BEFORE_ACCEPT = 50;
const MAX_ROUNDS = scale(20, 200);

// Clients that reset: "mid" ones send 64 KiB, read a little and reset with
// unread data pending; "queued" ones reset before the server accepts them.
// SO_LINGER {on, 0} makes close() send RST.
const RESETTERS = `
import socket, struct, sys
port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
payload = bytes(range(256)) * 256
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if mode == "mid":
        s.sendall(payload)
        s.recv(1024)
    s.close()
print(mode, count)
`;

function resetters(port: number, mode: "mid" | "queued", count: number) {
  return new Deno.Command(PYTHON, {
    args: ["-c", RESETTERS, String(port), mode, String(count)],
    stdin: "null",
  }).output();
}

Deno.test({
  ...needs(
    [PYTHON],
    "server serves steady clients without error through storms of resets",
  ),
  async fn() {
    await using server = await ServerProcess.start([]);
    const port = server.port;
    const steady = runLoad({
      port,
      connections: STEADY,
      concurrency: 50,
      bytesPerConnection: 16 * 1024,
      chunkSize: 1024,
      seed: 5,
    });
    let steadyDone = false;
    steady.then(() => steadyDone = true);
    // Storms go on for as long as the steady load runs (bounded in rounds):
    // mid-stream resets, then resets in the accept queue while the server
    // is stopped and cannot accept.
    let rounds = 0;
    let mid = 0;
    let queued = 0;
    while (!steadyDone && rounds < MAX_ROUNDS) {
      rounds++;
      const storm = await resetters(port, "mid", MID_STREAM);
      assertEquals(storm.code, 0, new TextDecoder().decode(storm.stderr));
      mid += MID_STREAM;
      server.child.kill("SIGSTOP");
      const early = await resetters(port, "queued", BEFORE_ACCEPT);
      server.child.kill("SIGCONT");
      assertEquals(early.code, 0, new TextDecoder().decode(early.stderr));
      queued += BEFORE_ACCEPT;
    }
    const report = await steady;
    assertEquals(report.failed, 0, report.errors.join("\n"));
    assertEquals(report.ok, STEADY);
    // Still accepting and serving, byte-exact.
    await verifiedExchange("127.0.0.1", port, randomBytes(100_000, 9), 4096);
    const resets = server.lines.filter((l) =>
      l.includes("closed (reset)")
    ).length;

    await recordFigure({
      test: "reset storms",
      load: `${STEADY} steady clients, 16 KiB each, 50 at a time`,
      faults:
        `${mid} clients reset mid-stream (RST with data pending) and ${queued} ` +
        `in the accept queue while the server was stopped, over ${rounds} rounds during the load`,
      result:
        `steady clients: 0 errors; ${resets} connections logged as reset; ` +
        "server kept accepting",
      bytesLost: report.bytesLost,
    });
  },
});
