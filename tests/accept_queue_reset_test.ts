import { assertEquals } from "@std/assert";
import { verifiedExchange } from "../bench/loadgen.ts";
import { needs, randomBytes, ServerProcess } from "./_helpers.ts";

const PYTHON = "/usr/bin/python3";

// Connects, then closes with SO_LINGER {on, 0} so that the kernel sends RST.
const RESET_CLIENTS = `
import socket, struct, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("reset", count)
`;

Deno.test({
  ...needs(
    [PYTHON],
    "server keeps accepting after queued connections are reset before accept (ENOTCONN)",
  ),
  async fn() {
    await using server = await ServerProcess.start(["--log-level", "debug"]);
    // Stopped, the server cannot accept: the connections complete their
    // handshake in the kernel's backlog and are reset there.
    server.child.kill("SIGSTOP");
    const reset = await new Deno.Command(PYTHON, {
      args: ["-c", RESET_CLIENTS, String(server.port), "5"],
      stdin: "null",
    }).output();
    server.child.kill("SIGCONT");
    assertEquals(reset.code, 0, new TextDecoder().decode(reset.stderr));
    // The accept loop met the dead connections and carried on.
    await server.waitForLine(/skipped a connection that failed before accept/);
    for (let i = 0; i < 5; i++) {
      await verifiedExchange(
        "127.0.0.1",
        server.port,
        randomBytes(10_000, i + 1),
        999,
      );
    }
  },
});
