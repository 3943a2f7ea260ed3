import { assert, assertEquals } from "@std/assert";
import { recordFigure, scale } from "../_figures.ts";
import { asciiUpper, randomBytes, ServerProcess } from "../_helpers.ts";

const CLIENTS = scale(50, 200);
const BYTES = scale(2, 20) * 1_000_000;
const CHUNK = 64 * 1024;

/**
 * A client that streams `data` and checks every byte it gets back against
 * `expected` as it arrives. It sends the first chunk, reports when its reply
 * has come, and sends the rest only once `resume` settles.
 */
function streamingClient(
  port: number,
  data: Uint8Array,
  expected: Uint8Array,
  resume: Promise<void>,
) {
  const firstReply = Promise.withResolvers<void>();
  const done = (async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const reading = (async () => {
        const buf = new Uint8Array(CHUNK);
        let offset = 0;
        while (true) {
          const n = await conn.read(buf);
          if (n === null) return offset;
          const want = expected.subarray(offset, offset + n);
          if (want.length !== n || want.some((b, i) => b !== buf[i])) {
            throw new Error(`wrong or extra bytes at offset ${offset}`);
          }
          offset += n;
          firstReply.resolve();
        }
      })();
      for (let off = 0; off < data.length; off += CHUNK) {
        if (off === CHUNK) await resume;
        const chunk = data.subarray(off, off + CHUNK);
        let written = 0;
        while (written < chunk.length) {
          written += await conn.write(chunk.subarray(written));
        }
      }
      await conn.closeWrite();
      return await reading;
    } finally {
      conn.close();
      firstReply.resolve();
    }
  })();
  return { firstReply: firstReply.promise, done };
}

Deno.test("SIGTERM while many clients stream: every byte is echoed and the exit code is 0", async () => {
  await using server = await ServerProcess.start(["--drain-timeout", "120"]);
  const data = randomBytes(BYTES, 11);
  const expected = asciiUpper(data);
  const resume = Promise.withResolvers<void>();
  const clients = Array.from(
    { length: CLIENTS },
    () => streamingClient(server.port, data, expected, resume.promise),
  );
  // Every client is mid-stream when the signal arrives, and goes on after it.
  await Promise.all(clients.map((c) => c.firstReply));
  server.child.kill("SIGTERM");
  await server.waitForLine(/shutting down/);
  resume.resolve();
  const received = await Promise.all(clients.map((c) => c.done));
  for (const bytes of received) assertEquals(bytes, BYTES);
  const status = await server.exit();
  assertEquals(status.code, 0);
  assert(
    server.lines.some((l) =>
      l.includes(`shutdown complete: ${CLIENTS} drained, 0 cut`)
    ),
  );
  await recordFigure({
    test: "drain: SIGTERM mid-stream",
    load: `${CLIENTS} clients each streaming ${BYTES / 1e6} MB`,
    faults:
      "SIGTERM once every client has had its first reply; drain timeout 120 s",
    result:
      `all ${CLIENTS} streams finished byte-exact; ${CLIENTS} drained, 0 cut; exit code 0`,
    bytesLost: 0,
  });
});

Deno.test("SIGTERM with a short drain timeout cuts the rest, counts them, and exits 0", async () => {
  const open = scale(20, 200);
  await using server = await ServerProcess.start(["--drain-timeout", "0.3"]);
  // Clients that connect, exchange a byte, and then sit there.
  const conns = await Promise.all(
    Array.from({ length: open }, async () => {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: server.port,
      });
      await conn.write(new Uint8Array([0x61]));
      const buf = new Uint8Array(1);
      assertEquals(await conn.read(buf), 1);
      return conn;
    }),
  );
  server.child.kill("SIGTERM");
  const status = await server.exit();
  assertEquals(status.code, 0);
  assert(
    server.lines.some((l) =>
      l.includes(`shutdown complete: 0 drained, ${open} cut`)
    ),
    server.lines.join("\n"),
  );
  // Each client sees its connection end.
  for (const conn of conns) {
    const end = await conn.read(new Uint8Array(1)).catch(() => null);
    assertEquals(end, null);
    conn.close();
  }
  await recordFigure({
    test: "drain: short timeout",
    load: `${open} idle open connections`,
    faults: "SIGTERM with --drain-timeout 0.3",
    result: `${open} cut and counted in the log; exit code 0`,
    bytesLost: 0,
  });
});
