/**
 * Python 3.11 as the oracle for the uppercasing modes: one process works
 * out the expected output of every input of a test.
 *
 * @module
 */

import { runClient } from "./_helpers.ts";

/** Debian's Python, whose Unicode tables (14.0) the test pins. */
export const PYTHON = "/usr/bin/python3";

/**
 * Code points that V8 uppercases and Python 3.11 does not, since they got
 * their uppercase in Unicode 16.0, which V8's tables (Deno 2.9) have and
 * Python's (Unicode 14.0) do not: U+019B, U+0264, U+1C8A, U+A7CD, U+A7DB
 * and the Garay small letters. Found by comparing every code point (the
 * test "V8 and Python differ ..." checks that this list is still exactly
 * right). Each maps to the single code point given.
 */
export const NEWER_IN_V8: ReadonlyMap<number, number> = new Map([
  [0x019b, 0xa7dc],
  [0x0264, 0xa7cb],
  [0x1c8a, 0x1c89],
  [0xa7cd, 0xa7cc],
  [0xa7db, 0xa7da],
  ...Array.from(
    { length: 0x10d85 - 0x10d70 + 1 },
    (_, k) => [0x10d70 + k, 0x10d50 + k] as [number, number],
  ),
]);

// Inputs come as: mode byte (0 ASCII, 1 unicode), 4-byte length, bytes;
// outputs as: 4-byte length, bytes. The code points of NEWER_IN_V8 are
// mapped first, as V8 does; Python's upper() then leaves them alone (they
// are uppercase letters, or unassigned in its tables).
const SCRIPT = `
import json, struct, sys
newer = str.maketrans({int(k): chr(v) for k, v in json.loads(sys.argv[1]).items()})
data = sys.stdin.buffer.read()
out = []
i = 0
while i < len(data):
    mode = data[i]
    (n,) = struct.unpack_from(">I", data, i + 1)
    chunk = data[i + 5:i + 5 + n]
    i += 5 + n
    if mode == 0:
        r = chunk.upper()
    else:
        text = chunk.decode("utf-8", "surrogateescape").translate(newer)
        r = text.upper().encode("utf-8", "surrogateescape")
    out.append(struct.pack(">I", len(r)))
    out.append(r)
sys.stdout.buffer.write(b"".join(out))
`;

/** One input for {@linkcode pythonUpper}. */
export interface OracleInput {
  /** `bytes.upper()` when false; the decode, upper, encode when true. */
  unicode: boolean;
  bytes: Uint8Array;
}

/**
 * Works out what Python makes of each input: `bytes.upper()` in ASCII mode;
 * in unicode mode `data.decode("utf-8", "surrogateescape").upper()
 * .encode("utf-8", "surrogateescape")`, with the code points of
 * {@linkcode NEWER_IN_V8} mapped as V8 maps them.
 */
export async function pythonUpper(
  inputs: OracleInput[],
): Promise<Uint8Array[]> {
  const total = inputs.reduce((sum, input) => sum + 5 + input.bytes.length, 0);
  const stdin = new Uint8Array(total);
  const view = new DataView(stdin.buffer);
  let at = 0;
  for (const { unicode, bytes } of inputs) {
    stdin[at] = unicode ? 1 : 0;
    view.setUint32(at + 1, bytes.length);
    stdin.set(bytes, at + 5);
    at += 5 + bytes.length;
  }
  const newer = JSON.stringify(Object.fromEntries(NEWER_IN_V8));
  const { code, stdout, stderr } = await runClient(
    PYTHON,
    ["-c", SCRIPT, newer],
    stdin,
  );
  if (code !== 0) throw new Error(`Python failed (exit ${code}): ${stderr}`);
  const outputs: Uint8Array[] = [];
  const out = new DataView(stdout.buffer, stdout.byteOffset, stdout.length);
  for (let i = 0; i < stdout.length;) {
    const length = out.getUint32(i);
    outputs.push(stdout.subarray(i + 4, i + 4 + length));
    i += 4 + length;
  }
  if (outputs.length !== inputs.length) {
    throw new Error(`Python gave ${outputs.length} of ${inputs.length}`);
  }
  return outputs;
}
