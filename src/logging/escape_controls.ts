// C0 controls, DEL, C1 controls and lone surrogates (with the u flag, a
// well-formed pair is one code point and does not match). Control
// characters are what these look for, hence the lint exceptions.
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/u;
// deno-lint-ignore no-control-regex
const CONTROLS_ALL = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/gu;

function escapeOne(char: string): string {
  const code = char.charCodeAt(0);
  if (char === "\n") return "\\n";
  if (char === "\r") return "\\r";
  if (char === "\t") return "\\t";
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16)}`;
}

/**
 * Escapes the characters a terminal or a log reader could act on: C0
 * controls (ESC, CR, LF, ...), DEL, C1 controls (such as U+009B, a
 * one-character CSI) and lone surrogates. Everything else, other text
 * included, stays as it is. Text that needs nothing back is returned as it
 * is, at the cost of one scan.
 *
 * @param text Text that may come from the network: an address from a PROXY
 * header, an error message that quotes input.
 * @returns the text with each such character written as `\n`, `\r`, `\t`,
 * `\xNN` or `\uNNNN`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { escapeControls } from "./escape_controls.ts";
 *
 * assertEquals(escapeControls("10.0.0.1\x1b[2J\r"), "10.0.0.1\\x1b[2J\\r");
 * assertEquals(escapeControls("caf\u00e9 \u{1f600}"), "caf\u00e9 \u{1f600}");
 * assertEquals(escapeControls("\u009b\ud800"), "\\x9b\\ud800");
 * ```
 */
export function escapeControls(text: string): string {
  return CONTROLS.test(text) ? text.replace(CONTROLS_ALL, escapeOne) : text;
}
