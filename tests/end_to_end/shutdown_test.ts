/**
 * Graceful shutdown as an operator sees it: the server runs as a child
 * process and is stopped with SIGTERM or SIGINT.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import {
  asciiUpper,
  randomBytes,
  readExactly,
  ServerProcess,
} from "../_helpers.ts";

/** Reads until the peer closes; returns everything read. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  for (let n; (n = await conn.read(buf)) !== null;) {
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) {
    written += await conn.write(data.subarray(written));
  }
}

/** Resolves true when the server closed the connection (EOF or an error). */
async function sawClose(conn: Deno.Conn): Promise<boolean> {
  try {
    return await conn.read(new Uint8Array(1)) === null;
  } catch {
    return true;
  }
}

/** Connects and waits until the server has taken the connection over. */
async function connectAccepted(server: ServerProcess): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await server.waitForLine(/connection 1 opened/);
  return conn;
}

function hasLine(server: ServerProcess, text: string): boolean {
  return server.lines.some((l) => l.includes(text));
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} drains in-flight data, refuses new clients and exits 0`, async () => {
    await using server = await ServerProcess.start([]);
    const payload = randomBytes(1024 * 1024 + 4096, signal.length);
    const first = payload.subarray(0, 4096);
    const rest = payload.subarray(4096);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    try {
      await writeAll(conn, first);
      assertEquals(await readExactly(conn, first.length), asciiUpper(first));

      server.child.kill(signal);
      await server.waitForLine(/shutting down/);
      const refused = await Deno.connect({
        hostname: "127.0.0.1",
        port: server.port,
      }).then((c) => {
        c.close();
        return undefined;
      }, (err: unknown) => err);
      assert(
        refused instanceof Deno.errors.ConnectionRefused,
        `a new connection is refused, got ${refused}`,
      );

      // The rest goes out only now, while the server drains.
      const reply = readToEnd(conn);
      await writeAll(conn, rest);
      await conn.closeWrite();
      assertEquals(await reply, asciiUpper(rest));
    } finally {
      conn.close();
    }
    const status = await server.exit();
    assertEquals(status.code, 0, server.lines.join("\n"));
    assert(hasLine(server, `received ${signal}`), server.lines.join("\n"));
    assert(hasLine(server, "draining 1 connections"), server.lines.join("\n"));
    assert(
      hasLine(server, "shutdown complete: 1 drained, 0 cut"),
      server.lines.join("\n"),
    );
  });
}

Deno.test("SIGTERM cuts the connections still open at the drain timeout", async () => {
  await using server = await ServerProcess.start(["--drain-timeout", "0.2"]);
  const conn = await connectAccepted(server);
  try {
    const signalledAt = performance.now();
    server.child.kill("SIGTERM");
    const status = await server.exit();
    const elapsed = performance.now() - signalledAt;
    assertEquals(status.code, 0, server.lines.join("\n"));
    assert(
      hasLine(server, "shutdown complete: 0 drained, 1 cut"),
      server.lines.join("\n"),
    );
    assert(
      hasLine(server, "connection 1 closed (shutdown)"),
      server.lines.join("\n"),
    );
    // The default drain timeout is 10 s; the flag's 0.2 s is what applied.
    assert(elapsed < 5000, `exited ${Math.round(elapsed)} ms after SIGTERM`);
    assert(await sawClose(conn), "the client sees its connection closed");
  } finally {
    conn.close();
  }
});

Deno.test("a second SIGTERM during the drain exits at once with 143", async () => {
  await using server = await ServerProcess.start(["--drain-timeout", "60"]);
  const conn = await connectAccepted(server);
  try {
    server.child.kill("SIGTERM");
    await server.waitForLine(/shutting down/);
    const againAt = performance.now();
    server.child.kill("SIGTERM");
    const status = await server.exit();
    const elapsed = performance.now() - againAt;
    assertEquals(status.code, 128 + 15);
    // The process exited by itself with that code; it was not killed by the
    // signal's default action.
    assertEquals(status.signal, null);
    assert(elapsed < 10_000, `exited ${Math.round(elapsed)} ms after`);
    assert(hasLine(server, "again"), server.lines.join("\n"));
    assert(!hasLine(server, "shutdown complete"), server.lines.join("\n"));
    assert(await sawClose(conn), "the client sees its connection closed");
  } finally {
    conn.close();
  }
});

Deno.test("SIGTERM sent as soon as the server logs that it listens still shuts down cleanly", async () => {
  // A supervisor may stop a server the moment it reports ready. The race,
  // if there is one, is short, so the test gives it several chances.
  for (let attempt = 1; attempt <= 10; attempt++) {
    await using server = await ServerProcess.start([]);
    server.child.kill("SIGTERM");
    const status = await server.exit();
    assertEquals(
      [status.code, status.signal],
      [0, null],
      `attempt ${attempt}: exit code and signal; log:\n${
        server.lines.join("\n")
      }`,
    );
    assert(
      hasLine(server, "shutdown complete: 0 drained, 0 cut"),
      server.lines.join("\n"),
    );
  }
});

Deno.test("a drain timeout longer than a timer can hold (24.8 days) waits, and prints no warning", async () => {
  // 30 days: past the 32-bit timer, which would fire at once and cut.
  await using server = await ServerProcess.start([
    "--drain-timeout",
    String(30 * 24 * 3600),
  ]);
  const conn = await connectAccepted(server);
  try {
    server.child.kill("SIGTERM");
    await server.waitForLine(/shutting down/);
    // Still served after the drain began, and long after a 1 ms timer.
    const data = randomBytes(64 * 1024, 30);
    await writeAll(conn, data);
    assertEquals(await readExactly(conn, data.length), asciiUpper(data));
    await conn.closeWrite();
    assertEquals((await readToEnd(conn)).length, 0);
    const status = await server.exit();
    assertEquals(status.code, 0, server.lines.join("\n"));
    assert(
      hasLine(server, "shutdown complete: 1 drained, 0 cut"),
      server.lines.join("\n"),
    );
    assert(!hasLine(server, "Warning"), server.lines.join("\n"));
  } finally {
    conn.close();
  }
});
