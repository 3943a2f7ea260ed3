/**
 * A log reader that stalls (a pipe nobody drains, a blocked journald) must
 * not stall serving: the server runs with its standard error on a pipe that
 * the test stops reading, and clients are served all the same.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import {
  asciiUpper,
  randomBytes,
  readExactly,
  readUntil,
  ROOT,
} from "../_helpers.ts";

Deno.test("a stalled reader of standard error does not stop the server: clients are served, lines are dropped and counted", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `${ROOT}main.ts`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      // A line per chunk: far more than a pipe holds.
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
    const listening = await readUntil(reader, /listening on /, seen);
    const port = Number(/:(\d+)$/.exec(listening)?.[1]);
    // From here nobody reads the pipe. 200 clients x 50 chunks log about
    // 2 MB, 30 times what the pipe holds.
    const clients = Promise.all(Array.from({ length: 200 }, async (_, i) => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      for (let k = 0; k < 50; k++) {
        const data = randomBytes(100, i * 50 + k + 1);
        await conn.write(data);
        assertEquals(await readExactly(conn, data.length), asciiUpper(data));
      }
    }));
    // Bounded: a server that blocks on its log would never answer.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("clients not served in 30 s"), 30_000);
    });
    const outcome = await Promise.race([clients.then(() => "served"), stalled]);
    clearTimeout(timer);
    assertEquals(outcome, "served");
    // The reader comes back: what waited comes out, then the count.
    const notice = await readUntil(
      reader,
      /dropped \d+ log lines while standard error was not being read/,
      seen,
    );
    assert(Number(/dropped (\d+)/.exec(notice)![1]) > 0);
    child.kill("SIGTERM");
    await readUntil(reader, /shutdown complete/, seen);
    assertEquals((await child.status).code, 0);
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
