const HEX = "0123456789abcdef";

/**
 * Renders the start of a client's payload for a log line. Printable ASCII
 * stays as it is; every other byte is escaped (`\n`, `\t`, `\\`, `\xNN`), so
 * client data can never forge a log line or send terminal control codes.
 *
 * @param bytes The payload.
 * @param max How many bytes to show at most.
 * @returns the escaped preview, with a note of how much was left out.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { previewBytes } from "./preview.ts";
 *
 * const bytes = new TextEncoder().encode("hi\n\x1b[2Jthere");
 * assertEquals(previewBytes(bytes, 8), "hi\\n\\x1b[2Jt… (+4 bytes)");
 * ```
 */
export function previewBytes(bytes: Uint8Array, max = 64): string {
  let out = "";
  const shown = Math.min(bytes.length, max);
  for (let i = 0; i < shown; i++) {
    const b = bytes[i]!;
    if (b === 0x5c) out += "\\\\";
    else if (b === 0x0a) out += "\\n";
    else if (b === 0x0d) out += "\\r";
    else if (b === 0x09) out += "\\t";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\x" + HEX[b >> 4] + HEX[b & 15];
  }
  if (bytes.length > shown) out += `… (+${bytes.length - shown} bytes)`;
  return out;
}
