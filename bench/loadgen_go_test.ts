import { assert, assertEquals, assertGreater, assertMatch } from "@std/assert";
import { buildLoadgen, HOLD_MODES, openIdle, runGoLoad } from "./loadgen_go.ts";
import { needs, ServerProcess } from "../tests/_helpers.ts";

// Short runs: the point is that the figures are real and checked, not that
// they are steady.
const SHORT = { duration: 1, warmup: 0.3 };

// Echoes every byte back unchanged: a server that forgot to uppercase, so
// the load generator must report the lowercase letters as wrong.
async function echoConnection(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let written = 0;
      while (written < n) written += await conn.write(buf.subarray(written, n));
    }
  } catch {
    // The load generator resets the connection once it sees a wrong byte.
  } finally {
    conn.close();
  }
}

function startEcho(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handlers: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) handlers.push(echoConnection(conn));
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      await accepting;
      await Promise.all(handlers);
    },
  };
}

Deno.test({
  ...needs(
    ["go"],
    "runGoLoad and openIdle measure upcase and catch wrong replies",
  ),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "upcase-loadgen-" });
    try {
      const binary = await buildLoadgen(dir);

      await t.step(
        "pingpong and bulk against upcase verify every byte",
        async () => {
          await using server = await ServerProcess.start([]);
          const addr = `127.0.0.1:${server.port}`;

          const pp = await runGoLoad(binary, {
            addr,
            mode: "pingpong",
            conns: 8,
            ...SHORT,
          });
          assertEquals(pp.errors, 0, pp.firstError);
          assertEquals(pp.exitCode, 0);
          assertEquals(pp.connected, 8);
          assertGreater(pp.msgs, 0);
          assertGreater(pp.msgsPerSec, 0);
          assert(pp.p50Us > 0 && pp.p50Us <= pp.p99Us, JSON.stringify(pp));
          assert(
            pp.p99Us <= pp.p999Us && pp.p999Us <= pp.maxUs,
            JSON.stringify(pp),
          );
          assertEquals(pp.windows, 1);
          // Fairness is the server's business; here only that the figures
          // are consistent.
          assert(pp.minConnWindowMsgs <= pp.minConnMsgs, JSON.stringify(pp));
          assert(pp.minConnMsgs <= pp.maxConnMsgs, JSON.stringify(pp));
          assertGreater(pp.cpuUserS + pp.cpuSysS, 0);

          const bulk = await runGoLoad(binary, {
            addr,
            mode: "bulk",
            conns: 4,
            ...SHORT,
          });
          assertEquals(bulk.errors, 0, bulk.firstError);
          assertEquals(bulk.exitCode, 0);
          assertGreater(bulk.mbPerSec, 0);
          assertGreater(bulk.bytesSent, 0);
          // Every byte sent came back, uppercased, before the server closed.
          assertEquals(bulk.bytesVerified, bulk.bytesSent);
          assert(bulk.minConnMBps <= bulk.maxConnMBps, JSON.stringify(bulk));
        },
      );

      await t.step(
        "a server that does not uppercase fails the run",
        async () => {
          const echo = startEcho();
          try {
            const addr = `127.0.0.1:${echo.port}`;
            for (const mode of ["pingpong", "bulk"] as const) {
              const result = await runGoLoad(binary, {
                addr,
                mode,
                conns: 2,
                ...SHORT,
              });
              assertGreater(result.errors, 0, mode);
              assertEquals(result.exitCode, 1, mode);
              assertMatch(
                result.firstError,
                /byte mismatch at stream offset \d+: sent 0x(6[1-9a-f]|7[0-9a]) /,
              );
            }
            await using held = await openIdle(binary, {
              addr,
              conns: 2,
              mode: "bulk-idle",
              text: "iota",
            });
            assertEquals(held.ready.errors, 2);
            const result = await held.finish();
            assertEquals(result.exitCode, 1);
            // ΐ is CE 90; its uppercase starts CE 99.
            assertMatch(
              result.firstError,
              /reply byte mismatch at reply offset 1: expected 0x99, got 0x90/,
            );
          } finally {
            await echo.close();
          }
        },
      );

      await t.step(
        "idle holds 200 connections that all still work after the wait",
        async () => {
          await using server = await ServerProcess.start([]);
          await using idle = await openIdle(binary, {
            addr: `127.0.0.1:${server.port}`,
            conns: 200,
          });
          assertEquals(idle.ready.conns, 200);
          assertEquals(idle.ready.connected, 200);
          assertEquals(idle.ready.errors, 0);
          const result = await idle.finish();
          assertEquals(result.errors, 0, result.firstError);
          assertEquals(result.exitCode, 0);
          assertEquals(result.secondExchangeOk, 200);
        },
      );

      await t.step(
        "every hold mode gets its connections into their state and finishes them byte-exact",
        async () => {
          await using server = await ServerProcess.start(["--unicode"]);
          const sent = {
            idle: (n: number) => n === 16,
            "bulk-idle": (n: number) => n === 256 * 1024,
            "mid-stream": (n: number) => n === 256 * 1024 + 1,
            // More than the kernel's buffers take before the server stops.
            "no-read": (n: number) => n > 256 * 1024,
          };
          for (const mode of HOLD_MODES) {
            // ΐ: 2 bytes in, 6 out, and mid-stream stops in the middle of one.
            for (const text of ["ascii", "iota"] as const) {
              await using held = await openIdle(binary, {
                addr: `127.0.0.1:${server.port}`,
                conns: 4,
                mode,
                text,
              });
              const what = `${mode} ${text}`;
              assertEquals(held.ready.connected, 4, what);
              assertEquals(held.ready.errors, 0, what);
              assert(
                sent[mode](held.ready.bytesSentPerConn),
                `${what}: ${held.ready.bytesSentPerConn} bytes sent`,
              );
              const result = await held.finish();
              assertEquals(result.errors, 0, `${what}: ${result.firstError}`);
              assertEquals(result.mode, mode);
              assertEquals(result.secondExchangeOk, 4, what);
            }
          }
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
