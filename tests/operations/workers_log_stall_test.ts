/**
 * The supervisor of `--workers` forwards its workers' logs to its own
 * standard error. A reader of that which stalls must not stall the
 * supervisor: it keeps reading every worker's log, keeps the whole
 * server's connection limits, and answers its admin endpoint, while lines
 * that do not fit are dropped and counted.
 *
 * @module
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { get, within } from "../_admin.ts";
import {
  asciiUpper,
  randomBytes,
  readExactly,
  readUntil,
  ROOT,
} from "../_helpers.ts";

Deno.test("--workers: a stalled reader of the supervisor's standard error stops neither forwarding nor serving; lines are dropped and counted", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-run",
      `${ROOT}main.ts`,
      "--workers",
      "2",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--admin",
      "127.0.0.1:0",
      // Every connection asks the supervisor for its client's slot, so a
      // supervisor that blocks on its log would hold every client.
      "--max-connections-per-ip",
      "1000",
      // A line per chunk from each worker: far more than a pipe holds.
      "--log-level",
      "debug",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  const seen = { text: "" };
  try {
    const up = await readUntil(reader, /listening on \S+ with 2 workers/, seen);
    const port = Number(/:(\d+) with/.exec(up)?.[1]);
    const admin = await readUntil(reader, /admin listening on/, seen);
    const adminPort = Number(/:(\d+) \(totals/.exec(admin)?.[1]);
    // From here nobody reads the pipe. 200 clients x 50 chunks log about
    // 2 MB, 30 times what the pipe holds; they come in waves, so that most
    // connect after the pipe has filled.
    const client = async (i: number) => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      for (let k = 0; k < 50; k++) {
        const data = randomBytes(100, i * 50 + k + 1);
        await conn.write(data);
        assertEquals(await readExactly(conn, data.length), asciiUpper(data));
      }
    };
    const clients = (async () => {
      for (let wave = 0; wave < 20; wave++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, i) => client(wave * 10 + i)),
        );
      }
    })();
    // Bounded: a supervisor that blocks on its log never admits them.
    await within(clients, 30_000, "200 clients served");
    const health = await within(get(adminPort, "/healthz"), 10_000, "/healthz");
    assertEquals(health.body, "ok");
    // The reader comes back: what waited comes out, then the supervisor's
    // own count; the workers' logs never waited.
    const notice = await readUntil(
      reader,
      /^\S+ \[WRN\] upcase\.log: dropped \d+ log lines while standard error was not being read/,
      seen,
    );
    assertGreater(Number(/dropped (\d+)/.exec(notice)![1]), 0);
    child.kill("SIGTERM");
    await readUntil(reader, /all workers have exited/, seen);
    assertEquals((await child.status).code, 0);
    assert(
      !/^\[w\d\] .*dropped \d+ log lines/m.test(seen.text),
      "a worker dropped lines: the supervisor stopped reading its log",
    );
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await reader.cancel();
    await child.status;
  }
});
