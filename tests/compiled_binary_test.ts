/**
 * Tests of the executable that `deno task compile` builds. `deno compile`
 * embeds a runtime, denort, that it downloads from Deno's servers unless
 * DENORT_BIN names a local copy. Where neither works, these tests are
 * skipped with the reason in their names. UPCASE_REQUIRE_TOOLS does not turn
 * this skip into a failure: denort is not a package CI can install.
 *
 * @module
 */
import { assertEquals, assertMatch } from "@std/assert";
import { VERSION } from "../src/version.ts";
import { exchange, ROOT, ServerProcess, utf8 } from "./_helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "upcase-compile-" });
const binary = `${dir}/upcase`;

/** Builds the binary with the compile task's own flags; returns why not, if it fails. */
async function build(): Promise<string | undefined> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const task: string = config.tasks.compile;
  const flags = task.split(/\s+/).filter((w) => w.startsWith("--allow"));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--quiet",
      ...flags,
      "--output",
      binary,
      `${ROOT}main.ts`,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  if (out.code !== 0) {
    const text = new TextDecoder().decode(out.stderr);
    const cause = text.split("\n").find((l) =>
      /dns error|error sending request|denort/i.test(l)
    );
    return (cause ?? text.split("\n")[0] ?? "deno compile failed").trim().slice(
      0,
      160,
    );
  }
  // DENORT_BIN pointing at a full deno makes a binary that acts as the deno
  // CLI, not as upcase; only a binary that answers as upcase counts.
  const version = await new Deno.Command(binary, {
    args: ["--version"],
    stdin: "null",
  }).output()
    .catch((err) => ({
      code: -1,
      stdout: new TextEncoder().encode(String(err)),
    }));
  const said = new TextDecoder().decode(version.stdout).trim();
  if (version.code !== 0 || said !== `upcase ${VERSION}`) {
    return `the built binary does not run as upcase (it said "${
      said.split("\n")[0]
    }")`;
  }
  return undefined;
}

const whyNot = await build();
const skip = whyNot === undefined
  ? ""
  : ` (skipped: deno compile could not build a working binary: ${whyNot}; set DENORT_BIN to a local denort 2.9.6)`;
addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test({
  name: `compiled binary serves clients with its embedded permissions${skip}`,
  ignore: whyNot !== undefined,
  async fn() {
    await using server = await ServerProcess.start([], { command: [binary] });
    assertEquals(
      new TextDecoder().decode(await exchange(server.port, utf8("binary"))),
      "BINARY",
    );
  },
});

Deno.test({
  name: `compiled binary rejects bad input with exit 2${skip}`,
  ignore: whyNot !== undefined,
  async fn() {
    const out = await new Deno.Command(binary, {
      args: ["--port", "70000"],
      stdin: "null",
    }).output();
    assertEquals(out.code, 2);
    assertMatch(
      new TextDecoder().decode(out.stderr),
      /--port: "70000" is not in 0-65535/,
    );
  },
});
