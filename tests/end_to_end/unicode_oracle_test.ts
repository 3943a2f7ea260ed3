/**
 * The server against an oracle the project did not write: random streams go
 * through a real server on loopback, in random writes, and every reply must
 * be what Python 3.11 makes of the same bytes. Replay a failure with the
 * seed from its name: `UPCASE_SEED=<seed> deno test --allow-all
 * tests/unicode_oracle_test.ts`.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { serveOn } from "../_transport.ts";
import { needs, readAll } from "../_helpers.ts";
import { NEWER_IN_V8, PYTHON, pythonUpper } from "../_python_upper.ts";
import { Random, randomInput, randomWrites } from "../_unicode_inputs.ts";

const UNICODE_STREAMS = 400;
const ASCII_STREAMS = 100;
/** The streams must all be answered within this, or the test fails. */
const DEADLINE_MS = 60_000;

const seed = Number(Deno.env.get("UPCASE_SEED") ?? "") ||
  crypto.getRandomValues(new Uint32Array(1))[0]! || 1;

/** Sends `input` in writes of `sizes`, half-closes, reads all of the reply. */
async function roundTrip(
  port: number,
  input: Uint8Array,
  sizes: number[],
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reply = readAll(conn.readable);
    let at = 0;
    for (const size of sizes) {
      const end = at + size;
      while (at < end) at += await conn.write(input.subarray(at, end));
    }
    await conn.closeWrite();
    return await reply;
  } finally {
    try {
      conn.close();
    } catch {
      // The readable closed it when the server finished.
    }
  }
}

/** Where two arrays first differ, with the bytes around it, in hex. */
function firstDifference(
  input: Uint8Array,
  expected: Uint8Array,
  actual: Uint8Array,
): string {
  let at = 0;
  while (at < expected.length && expected[at] === actual[at]) at++;
  const hex = (bytes: Uint8Array) =>
    [...bytes.subarray(Math.max(0, at - 12), at + 12)]
      .map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return `lengths: input ${input.length}, expected ${expected.length}, ` +
    `got ${actual.length}; first difference at output byte ${at}\n` +
    `  expected ${hex(expected)}\n  got      ${hex(actual)}`;
}

/** Fails the test unless `work` settles within the deadline. */
async function withDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Not done after ${DEADLINE_MS} ms`)),
      DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A random input, the sizes of the writes that send it, and its mode. */
interface Case {
  unicode: boolean;
  bytes: Uint8Array;
  sizes: number[];
}

/** Sends every case at once to a real server of its mode; gives the replies. */
async function replyAll(cases: Case[]): Promise<Uint8Array[]> {
  const options = { hostname: "127.0.0.1", port: 0, onListen() {} };
  await using unicode = await serveOn({ ...options, unicode: true });
  await using ascii = await serveOn(options);
  return await withDeadline(
    Promise.all(
      cases.map((c) =>
        roundTrip((c.unicode ? unicode : ascii).addr.port, c.bytes, c.sizes)
      ),
    ),
  );
}

Deno.test(
  needs(
    [PYTHON],
    `serve replies to ${UNICODE_STREAMS} unicode and ${ASCII_STREAMS} ASCII random streams as Python does (seed ${seed}; UPCASE_SEED=${seed} replays)`,
  ),
  async () => {
    const random = new Random(seed);
    const cases: Case[] = Array.from(
      { length: UNICODE_STREAMS + ASCII_STREAMS },
      (_, i) => {
        const bytes = randomInput(random);
        const sizes = randomWrites(random, bytes.length);
        return { unicode: i < UNICODE_STREAMS, bytes, sizes };
      },
    );
    const expected = await pythonUpper(cases);
    const replies = await replyAll(cases);
    const failures = cases.flatMap((c, i) => {
      const [reply, want] = [replies[i]!, expected[i]!];
      if (
        reply.length === want.length && reply.every((b, k) => b === want[k])
      ) {
        return [];
      }
      const mode = c.unicode ? "unicode" : "ASCII";
      return [
        `stream ${i} (${mode}, ${c.sizes.length} writes): ` +
        firstDifference(c.bytes, want, reply),
      ];
    });
    assertEquals(
      failures.length,
      0,
      `seed ${seed}: ${failures.length} of ${cases.length} replies wrong; ` +
        `the first:\n${failures.slice(0, 3).join("\n")}`,
    );
  },
);

/** Python's uppercase of every code point that has one, as text lines. */
const EVERY_CODE_POINT = `
import sys
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    if c.upper() != c:
        print("%x %s" % (cp, " ".join("%x" % ord(u) for u in c.upper())))
`;

Deno.test(
  needs(
    [PYTHON],
    "V8 and Python 3.11 differ in uppercase at exactly the code points the oracle maps as V8 does",
  ),
  async () => {
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", EVERY_CODE_POINT],
      stdout: "piped",
    }).output();
    assert(out.success, "Python failed");
    const python = new Map<number, string>();
    for (
      const line of new TextDecoder().decode(out.stdout).trim().split("\n")
    ) {
      const [cp, ...upper] = line.split(" ").map((h) => parseInt(h, 16));
      python.set(cp!, String.fromCodePoint(...upper));
    }
    const differences = new Map<number, string>();
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const char = String.fromCodePoint(cp);
      const v8 = char.toUpperCase();
      if (v8 !== (python.get(cp) ?? char)) differences.set(cp, v8);
    }
    assertEquals(
      differences,
      new Map([...NEWER_IN_V8].map(([cp, u]) => [cp, String.fromCodePoint(u)])),
    );
  },
);
