/**
 * A connection that the client resets while it waits in the kernel's accept
 * queue makes Deno's `accept()` fail (ENOTCONN on Linux: the socket is
 * accepted, but it has no peer address any more). That failure belongs to
 * the one dead connection and must not stop the server.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import {
  asciiUpper,
  exchange,
  needs,
  randomBytes,
  ServerProcess,
} from "../_helpers.ts";

const PYTHON = "/usr/bin/python3";
const RESETS = 5;

// Deno cannot set SO_LINGER; with {on, 0} close() sends RST instead of FIN.
// The script first checks that the server is stopped (state T), which
// Deno's own file API would need --allow-all to read from /proc.
const RESET_CLIENTS = `
import socket, struct, sys
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stat = open(f"/proc/{pid}/stat").read()
state = stat[stat.rindex(")") + 2]
if state != "T":
    sys.exit(f"the server is not stopped: state {state}")
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;

Deno.test({
  ...needs(
    [PYTHON],
    "server keeps accepting after connections are reset in its accept queue",
  ),
  async fn() {
    await using server = await ServerProcess.start(["--log-level", "debug"]);
    // A stopped server cannot accept: the kernel completes each handshake
    // into the backlog, and the reset arrives while the connection waits.
    server.child.kill("SIGSTOP");
    let resumed = false;
    try {
      const reset = await new Deno.Command(PYTHON, {
        args: [
          "-c",
          RESET_CLIENTS,
          String(server.port),
          String(RESETS),
          String(server.child.pid),
        ],
        stdin: "null",
      }).output();
      assertEquals(reset.code, 0, new TextDecoder().decode(reset.stderr));
      server.child.kill("SIGCONT");
      resumed = true;
    } finally {
      if (!resumed) server.child.kill("SIGCONT");
    }

    // These connect after the reset ones, so the server meets the dead
    // connections first.
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(50_000, 100 + i);
      assertEquals(await exchange(server.port, data), asciiUpper(data));
    }
    const skipped = server.lines.filter((l) =>
      l.includes("skipped a connection that failed before accept")
    );
    // Proof that the case under test happened: each reset connection made
    // accept() fail, and the loop went on.
    assertEquals(skipped.length, RESETS, server.lines.join("\n"));
    assert(
      !server.lines.some((l) => l.includes("accepting connections failed")),
      server.lines.join("\n"),
    );

    // Still alive: it shuts down cleanly on request, having served only
    // the normal clients.
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
    assert(
      server.lines.some((l) => l.includes("shutdown complete")),
      server.lines.join("\n"),
    );
  },
});
