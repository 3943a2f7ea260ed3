import { assert, assertEquals } from "@std/assert";
import { recordFigure, rssKiB, scale } from "../_figures.ts";
import { asciiUpper, randomBytes, ServerProcess, utf8 } from "../_helpers.ts";

const CLIENTS = scale(50, 200);
const PER_CLIENT = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** What the clients send in one mode, and what must come back. */
interface Case {
  mode: "ascii" | "unicode";
  args: string[];
  what: string;
  data: Uint8Array;
  expected: Uint8Array;
}

function cases(): Case[] {
  const random = randomBytes(PER_CLIENT, 7);
  // ΐ (U+0390) grows from 2 bytes to 6, the most any text grows.
  const iota = "ΐ".repeat(PER_CLIENT / 2);
  return [
    {
      mode: "ascii",
      args: [],
      what: "random bytes",
      data: random,
      expected: asciiUpper(random),
    },
    {
      mode: "unicode",
      args: ["--unicode"],
      what: "ΐ",
      data: utf8(iota),
      expected: utf8(iota.toUpperCase()),
    },
  ];
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

/** Reads the whole reply, checking each piece as it comes. */
async function readChecked(conn: Deno.Conn, expected: Uint8Array) {
  const buffer = new Uint8Array(CHUNK);
  let got = 0;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    for (let i = 0; i < n; i++) {
      if (buffer[i] !== expected[got + i]) {
        throw new Error(`Wrong reply byte at offset ${got + i}`);
      }
    }
    got += n;
  }
  return got;
}

/**
 * Waits until the writes stall: nothing more taken for 500 ms, checked
 * every 100 ms, for 60 s at most. This observes that every buffer on the
 * way is full; it does not stand in for an event.
 */
async function waitForStall(total: () => number): Promise<void> {
  let last = -1;
  let still = 0;
  const deadline = Date.now() + 60_000;
  while (still < 5 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

for (const c of cases()) {
  const name =
    `server stops reading from clients that never read, holds little per client, and loses nothing (${c.mode})`;
  Deno.test({
    name,
  }, async () => {
    await using server = await ServerProcess.start(c.args);
    const rssBefore = rssKiB(server.child.pid);
    const conns = await Promise.all(
      Array.from(
        { length: CLIENTS },
        () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
      ),
    );
    const writers = conns.map((conn) => stuffWithoutReading(conn, c.data));
    const total = () => writers.reduce((s, w) => s + w.progress.written, 0);
    await waitForStall(total);
    const stalledAt = total() / CLIENTS;
    assert(
      stalledAt < c.data.length,
      "the writes stalled before the whole payload was sent",
    );
    const opened = server.lines.filter((l) => / opened from /.test(l));
    assertEquals(opened.length, CLIENTS, "the server holds every client");
    // Resident memory as ps shows it, against the same process just before
    // the clients connected; the kernel's socket buffers are not in it.
    const rssKBPerClient = (rssKiB(server.child.pid) - rssBefore) * 1.024 /
      CLIENTS;

    // Now the clients read: every byte comes back uppercased, none lost.
    await Promise.all(conns.map(async (conn, i) => {
      const reading = readChecked(conn, c.expected);
      await writers[i]!.done;
      await conn.closeWrite();
      assertEquals(await reading, c.expected.length, `client ${i} got it all`);
      conn.close();
    }));

    await recordFigure({
      test: `backpressure: clients that send but never read (${c.mode})`,
      load: `${CLIENTS} clients each pushing ${
        c.data.length >> 20
      } MiB of ${c.what} without reading${
        c.args.length > 0 ? `, server ${c.args.join(" ")}` : ""
      }`,
      faults: "no client reads until its writes have stalled",
      result: `writes stalled after ${
        (stalledAt / 1024).toFixed(0)
      } KiB per client (kernel buffers); server RSS ${
        rssKBPerClient.toFixed(0)
      } KB per stuck client above the RSS before they connected; then all read back byte-exact`,
      bytesLost: 0,
    });
    // The server holds a bounded buffer per client, not what the client
    // pushed: far below what the kernel took from each one.
    assert(
      rssKBPerClient * 1000 < stalledAt / 4,
      `RSS ${rssKBPerClient.toFixed(0)} KB per stuck client, against ${
        (stalledAt / 1000).toFixed(0)
      } KB each pushed`,
    );
  });
}
