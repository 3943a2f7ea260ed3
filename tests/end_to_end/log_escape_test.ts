/**
 * Client-controlled text in the logs: a trusted PROXY sender's header with
 * ESC, CR and a C1 control, sent by nc, must reach neither the text log nor
 * the JSON log as raw control characters.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { needs, runClient, ServerProcess } from "../_helpers.ts";

// "TCP4" broken by ESC [2J (clear screen) and a CR (back to the start of the
// line); the parser quotes the protocol field in its rejection. (It decodes
// the header as windows-1252, so a byte cannot become a C1 control there;
// escapeControls' own example covers those.)
const HOSTILE = new Uint8Array([
  ...new TextEncoder().encode("PROXY TC"),
  0x1b,
  ...new TextEncoder().encode("[2J"),
  0x0d,
  ...new TextEncoder().encode("P4 192.0.2.1 192.0.2.2 1000 2000\r\n"),
]);

// Anything a terminal could act on: C0 but the line's own end, DEL, C1.
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

async function sendHostileHeader(format: "text" | "json"): Promise<string[]> {
  await using server = await ServerProcess.start([
    "--proxy-protocol",
    "--log-format",
    format,
  ]);
  const out = await runClient(
    "nc",
    ["-N", "127.0.0.1", String(server.port)],
    HOSTILE,
  );
  assertEquals(out.code, 0, out.stderr);
  await server.waitForLine(/rejected \(invalid\)/);
  return server.lines;
}

Deno.test({
  ...needs(
    ["nc"],
    "text logs escape ESC and CR from a PROXY header",
  ),
  async fn() {
    const lines = await sendHostileHeader("text");
    for (const line of lines) {
      assert(
        !RAW_CONTROL.test(line),
        `raw control in: ${JSON.stringify(line)}`,
      );
    }
    const rejected = lines.find((l) => l.includes("rejected (invalid)"))!;
    assertMatch(rejected, /v1 protocol "TC\\x1b\[2J\\rP4" is not TCP4/);
  },
});

Deno.test({
  ...needs(["nc"], "JSON logs stay one object per line, with no raw controls"),
  async fn() {
    const lines = await sendHostileHeader("json");
    for (const line of lines) {
      assert(
        !RAW_CONTROL.test(line),
        `raw control in: ${JSON.stringify(line)}`,
      );
      JSON.parse(line);
    }
    const rejected = lines
      .map((l) => JSON.parse(l) as { message: string })
      .find((r) => r.message.includes("rejected (invalid)"))!;
    assert(
      rejected.message.includes('"TC\\x1b[2J\\rP4"'),
      rejected.message,
    );
  },
});
