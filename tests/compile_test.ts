/**
 * The executable that `deno task compile` builds, built here with the same
 * permission flags into a temporary folder.
 *
 * `deno compile` embeds a runtime, denort, which it downloads unless
 * DENORT_BIN names a local copy. Where no working binary can be built, the
 * tests are registered as ignored, with the reason in their names. Unlike
 * `needs()`, UPCASE_REQUIRE_TOOLS=1 does not turn this skip into a failure:
 * denort is not a package that this machine or CI can install.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { OPTIONS } from "../src/config.ts";
import {
  asciiUpper,
  exchange,
  randomBytes,
  ROOT,
  ServerProcess,
} from "./_helpers.ts";

const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const VERSION: string = denoJson.version;
const decoder = new TextDecoder();

/** Runs a command to its end, killing it after `timeoutMs`. */
async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } =
    {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { timeoutMs = 120_000, ...rest } = options;
  const killer = new AbortController();
  const timer = setTimeout(() => killer.abort(), timeoutMs);
  try {
    const out = await new Deno.Command(command, {
      args,
      ...rest,
      env: { NO_COLOR: "1", ...rest.env },
      stdin: "null",
      signal: killer.signal,
    }).output();
    if (killer.signal.aborted) {
      return {
        code: -1,
        stdout: "",
        stderr: `${command} was still running after ${timeoutMs} ms`,
      };
    }
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The line of deno compile's error output that says what went wrong. */
function firstErrorLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l);
  const cause = lines.find((l) => /denort|error sending request/i.test(l)) ??
    lines[0] ?? "no output";
  const text = cause.replace(/^\d+: /, "");
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

const dir = await Deno.makeTempDir({ prefix: "upcase-compile-test-" });
addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const binary = `${dir}/upcase`;

/** Builds the binary; returns why it does not work, or undefined if it does. */
async function build(): Promise<string | undefined> {
  const task: string = denoJson.tasks.compile;
  const permissions = task.split(/\s+/).filter((w) => w.startsWith("--allow"));
  const compiled = await run(Deno.execPath(), [
    "compile",
    "--quiet",
    ...permissions,
    "--output",
    binary,
    `${ROOT}main.ts`,
  ], { cwd: ROOT });
  if (compiled.code !== 0) {
    return `deno compile could not get denort: ${
      firstErrorLine(compiled.stderr)
    }`;
  }
  // With DENORT_BIN pointing at a full deno, compiling "succeeds" but the
  // result behaves as the deno CLI: only a binary that answers as upcase
  // counts.
  const version = await run(binary, ["--version"], { timeoutMs: 30_000 })
    .catch((err: unknown) => ({ code: -1, stdout: String(err), stderr: "" }));
  if (version.code !== 0 || version.stdout !== `upcase ${VERSION}\n`) {
    return `the compiled binary does not run as upcase; --version said "${
      (version.stdout.split("\n")[0] ?? "").slice(0, 80)
    }"`;
  }
  return undefined;
}

const whyNot = await build();
const suffix = whyNot === undefined
  ? ""
  : ` (skipped: ${whyNot}; set DENORT_BIN to a local denort ${Deno.version.deno})`;

function compiledTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: `${name}${suffix}`, ignore: whyNot !== undefined, fn });
}

compiledTest(
  "compiled binary serves clients with only its embedded permissions",
  async () => {
    await using server = await ServerProcess.start([], { command: [binary] });
    const data = randomBytes(300_000, 21);
    assertEquals(await exchange(server.port, data), asciiUpper(data));
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
    assert(
      server.lines.some((l) =>
        l.includes("shutdown complete: 0 drained, 0 cut")
      ),
      server.lines.join("\n"),
    );
  },
);

compiledTest(
  "compiled binary reads upcase's variables through its embedded --allow-env",
  async () => {
    await using server = await ServerProcess.start([], {
      command: [binary],
      env: { UPCASE_LOG_FORMAT: "json" },
    });
    const data = randomBytes(1000, 22);
    assertEquals(await exchange(server.port, data), asciiUpper(data));
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
    for (const line of server.lines) JSON.parse(line);
  },
);

compiledTest(
  "compiled binary --help lists every option, and --version prints the version",
  async () => {
    const help = await run(binary, ["--help"]);
    assertEquals(help.code, 0);
    for (const option of OPTIONS) {
      assert(help.stdout.includes(`--${option.flag}`), option.flag);
      assert(help.stdout.includes(`env ${option.env}`), option.env);
    }
    const version = await run(binary, ["--version"]);
    assertEquals(version.code, 0);
    assertEquals(version.stdout, `upcase ${VERSION}\n`);
  },
);

compiledTest(
  "compiled binary rejects bad input with exit 2 and one line",
  async () => {
    const out = await run(binary, ["--host", "127.0.0.1", "--port", "70000"], {
      timeoutMs: 15_000,
    });
    assertEquals(out.code, 2, out.stderr);
    assertEquals(out.stdout, "");
    const lines = out.stderr.split("\n").filter((l) => l !== "");
    assertEquals(lines.length, 1, out.stderr);
    assert(lines[0]!.includes('--port: "70000"'), lines[0]);
  },
);
