import { assert, assertEquals } from "@std/assert";
import { recordFigure, rssKiB, scale } from "./_figures.ts";
import { asciiUpper, randomBytes, ROOT } from "./_helpers.ts";

const CLIENTS = scale(50, 200);
const PER_CLIENT = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;
const LIMIT_KIB = 256;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  connections: number;
}

/** The server in tests/_memory_probe.ts, which reports its live memory. */
class MemoryProbe implements AsyncDisposable {
  readonly child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--v8-flags=--expose-gc",
      `${ROOT}tests/_memory_probe.ts`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  #lines = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  #writer = this.child.stdin.getWriter();
  #buffered = "";

  async line(): Promise<string> {
    while (!this.#buffered.includes("\n")) {
      const r = await this.#lines.read();
      if (r.done) throw new Error("the memory probe exited");
      this.#buffered += r.value;
    }
    const nl = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, nl);
    this.#buffered = this.#buffered.slice(nl + 1);
    return line;
  }

  /** Live memory after a full garbage collection. */
  async measure(): Promise<Memory> {
    await this.#writer.write(new TextEncoder().encode("measure\n"));
    return JSON.parse(await this.line());
  }

  async [Symbol.asyncDispose]() {
    await this.#writer.close();
    await this.#lines.cancel();
    await this.child.status;
  }
}

/** Writes `data` without reading; `progress.written` is what the kernel took. */
function stuffWithoutReading(conn: Deno.Conn, data: Uint8Array) {
  const progress = { written: 0 };
  const done = (async () => {
    while (progress.written < data.length) {
      const end = Math.min(progress.written + CHUNK, data.length);
      progress.written += await conn.write(
        data.subarray(progress.written, end),
      );
    }
  })();
  return { progress, done };
}

Deno.test("server stops reading from clients that never read, holds little per client, and loses nothing", async () => {
  await using probe = new MemoryProbe();
  const port = Number((await probe.line()).split(" ")[1]);
  const before = await probe.measure();
  const rssBefore = rssKiB(probe.child.pid);

  const data = randomBytes(PER_CLIENT, 7);
  const conns = await Promise.all(
    Array.from(
      { length: CLIENTS },
      () => Deno.connect({ hostname: "127.0.0.1", port }),
    ),
  );
  const writers = conns.map((c) => stuffWithoutReading(c, data));

  // Wait until the writes stall: nothing more taken for 500 ms, checked
  // every 100 ms, for 60 s at most. This observes that every buffer on the
  // way is full; it does not stand in for an event.
  const total = () => writers.reduce((s, w) => s + w.progress.written, 0);
  let last = -1;
  let still = 0;
  const deadline = Date.now() + 60_000;
  while (still < 5 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  const stalledAt = total() / CLIENTS;
  assert(
    stalledAt < PER_CLIENT,
    "the writes stalled before the whole payload was sent",
  );
  const stuck = await probe.measure();
  assertEquals(stuck.connections, CLIENTS);
  const liveKiB =
    (stuck.heapUsed + stuck.external - before.heapUsed - before.external) /
    CLIENTS / 1024;
  const rssKiBPerClient = (rssKiB(probe.child.pid) - rssBefore) / CLIENTS;

  // Now the clients read: every byte comes back uppercased, none lost.
  const expected = asciiUpper(data);
  await Promise.all(conns.map(async (conn, i) => {
    const reading = new Response(conn.readable).arrayBuffer();
    await writers[i]!.done;
    await conn.closeWrite();
    const got = new Uint8Array(await reading);
    assertEquals(
      got.length,
      expected.length,
      `client ${i} got every byte back`,
    );
    assertEquals(got, expected, `client ${i} got the right bytes`);
  }));

  await recordFigure({
    test: "backpressure: clients that send but never read",
    load: `${CLIENTS} clients each pushing ${
      PER_CLIENT >> 20
    } MiB without reading`,
    faults: "no client reads until its writes have stalled",
    result:
      `writes stalled after ${(stalledAt / 1024).toFixed(0)} KiB per client ` +
      `(kernel buffers); live server memory ${
        liveKiB.toFixed(0)
      } KiB per stuck client ` +
      `(limit ${LIMIT_KIB}; RSS high-water ${
        rssKiBPerClient.toFixed(0)
      } KiB); ` +
      `then all read back byte-exact`,
    bytesLost: 0,
  });
  assert(
    liveKiB <= LIMIT_KIB,
    `live memory ${
      liveKiB.toFixed(1)
    } KiB per stuck client (limit ${LIMIT_KIB} KiB)`,
  );
});
