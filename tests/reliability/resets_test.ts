import { assert, assertEquals } from "@std/assert";
import { runLoad } from "../../bench/loadgen.ts";
import { openFds, recordFigure, scale } from "../_figures.ts";
import {
  asciiUpper,
  needs,
  randomBytes,
  readAll,
  ServerProcess,
} from "../_helpers.ts";

const PYTHON = "/usr/bin/python3";
const STEADY = scale(2_000, 20_000);
const STEADY_BYTES = 4 * 1024;
const STEADY_CONCURRENCY = 50;
// Storms follow one another for as long as the steady load runs; at least
// MIN_STORMS of them must end before it does.
const MAX_STORMS = scale(50, 500);
const MIN_STORMS = 2;
const MID_STREAM = scale(100, 200);
// The listener's backlog is 511 (ss -ltn); the queued clients and the
// steady ones that connect while the server is stopped must fit in it.
const QUEUED = 200;
// Closing is asynchronous on the server; fds are polled every 50 ms for at
// most 5 s to see the last close, and a count still off then is a leak.
const SETTLE_MS = 5_000;
// A steady exchange takes milliseconds, plus the pauses while the server is
// stopped; one that takes this long fails instead of hanging the test.
const TIMEOUT_MS = 30_000;

// A storm of clients that reset. "mid": every client connects and sends
// 64 KiB, then reads a little of the reply, waits until more of it has
// arrived (a peek), and closes with that unread (the kernel sends RST for
// unread data; with none, it would send FIN), every other one also with
// SO_LINGER {1, 0}. "queued": the server is stopped, so the clients
// complete the handshake in the kernel's backlog and reset there with
// SO_LINGER {1, 0}, before the server accepts them. Every socket times out,
// so the script cannot hang.
const RESETTERS = `
import socket, struct, sys
port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
linger0 = struct.pack("ii", 1, 0)
payload = bytes(range(97, 123)) * 2521
payload = payload[:65536]
socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
if mode == "mid":
    for s in socks:
        s.sendall(payload)
    for s in socks:
        if s.recv(1024)[:1] != b"A":
            sys.exit("no uppercase reply before the reset")
        # More of the reply must be waiting unread, or close sends FIN.
        s.recv(1, socket.MSG_PEEK)
for i, s in enumerate(socks):
    if mode == "queued" or i % 2 == 0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
    s.close()
print(mode, count)
`;

async function resetters(
  port: number,
  mode: "mid" | "queued",
  count: number,
): Promise<void> {
  const out = await new Deno.Command(PYTHON, {
    args: ["-c", RESETTERS, String(port), mode, String(count)],
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `${mode} resetters failed:\n${stderr}`);
}

async function settledFds(pid: number, want: number): Promise<number> {
  const deadline = Date.now() + SETTLE_MS;
  let fds = openFds(pid);
  while (fds !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    fds = openFds(pid);
  }
  return fds;
}

/**
 * One exchange whose close line the server logs last: the client knows its
 * own port, and the server's line for it names that port.
 */
async function lastExchange(server: ServerProcess): Promise<void> {
  const data = randomBytes(100_000, 9);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const local = conn.localAddr.port;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, TIMEOUT_MS);
  try {
    const reply = readAll(conn.readable);
    let written = 0;
    while (written < data.length) {
      written += await conn.write(data.subarray(written));
    }
    await conn.closeWrite();
    assertEquals(await reply, asciiUpper(data));
  } catch (err) {
    if (timedOut) throw new Error(`No reply after ${TIMEOUT_MS} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // The readable closed it at the end of the reply.
    }
  }
  await server.waitForLine(
    new RegExp(`closed \\(eof\\):.* peer 127\\.0\\.0\\.1:${local}$`),
    10_000,
  );
}

Deno.test({
  ...needs(
    [PYTHON],
    "server serves steady clients without error through storms of resets",
  ),
  async fn() {
    // Debug level, for the line each connection reset before accept leaves.
    await using server = await ServerProcess.start(["--log-level", "debug"]);
    const { port } = server;
    const pid = server.child.pid;
    const fdsBefore = openFds(pid);

    const steady = runLoad({
      port,
      connections: STEADY,
      concurrency: STEADY_CONCURRENCY,
      bytesPerConnection: STEADY_BYTES,
      chunkSize: 1024,
      seed: 5,
      timeoutMs: TIMEOUT_MS,
    });
    let steadyOver = false;
    steady.finally(() => steadyOver = true);
    let storms = 0;
    let stormsDuringLoad = 0;
    try {
      while (storms < MAX_STORMS && !steadyOver) {
        await resetters(port, "mid", MID_STREAM);
        server.child.kill("SIGSTOP");
        try {
          await resetters(port, "queued", QUEUED);
        } finally {
          server.child.kill("SIGCONT");
        }
        storms++;
        if (!steadyOver) stormsDuringLoad++;
      }
    } finally {
      // Whatever happened to a storm, the steady clients finish (or fail).
      await steady;
    }
    const load = await steady;
    assertEquals(load.failed, 0, load.errors.join("\n"));
    assertEquals(load.ok, STEADY);
    assertEquals(load.bytesVerified, STEADY * STEADY_BYTES);
    assert(
      stormsDuringLoad >= MIN_STORMS,
      `only ${stormsDuringLoad} storms ended while the steady load ran`,
    );

    // Still accepting and serving, byte for byte; and since its close line
    // comes last, every earlier line is in by then.
    await lastExchange(server);
    const count = (pattern: RegExp) =>
      server.lines.filter((l) => pattern.test(l)).length;
    const midResets = count(/ closed \(reset\)/);
    const skipped = count(/skipped a connection that failed before accept/);
    assertEquals(midResets, storms * MID_STREAM, "mid-stream resets logged");
    assertEquals(skipped, storms * QUEUED, "queued resets skipped at accept");
    assertEquals(count(/ closed \(error\)|\[(ERR|FTL)\]|accept failed/), 0);

    const fdsAfter = await settledFds(pid, fdsBefore);
    assertEquals(fdsAfter, fdsBefore, "open fds back to the baseline");

    await recordFigure({
      test: "reset storms",
      load: `${STEADY} steady clients, ${STEADY_BYTES / 1024} KiB each, ` +
        `${STEADY_CONCURRENCY} at a time`,
      faults:
        `${storms} storms back to back during the load, each of ${MID_STREAM} clients resetting ` +
        `mid-stream (64 KiB sent, up to 1 KiB of the reply read, then RST ` +
        `by SO_LINGER 0 or by closing with unread data) and ${QUEUED} resetting ` +
        `in the accept queue while the server was stopped (SIGSTOP)`,
      result: `steady clients: 0 errors; ${midResets} connections closed ` +
        `as reset and ${skipped} skipped at accept; open fds ${fdsBefore} ` +
        `before and ${fdsAfter} after; server kept accepting`,
      bytesLost: load.bytesLost,
    });
  },
});
