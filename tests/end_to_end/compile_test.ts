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
 * The permissions the task embeds are tried without a binary too: main.ts
 * under `deno run` with exactly those flags behaves as the binary would,
 * since compiling embeds them as they are. Only `--allow-run`'s path
 * differs: under `deno run` the workers are deno itself.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { OPTIONS } from "../../src/cli/config.ts";
import { netPermissionMessage } from "../../src/cli/permissions.ts";
import { get } from "../_admin.ts";
import {
  asciiUpper,
  exchange,
  randomBytes,
  ROOT,
  runCli,
  ServerProcess,
} from "../_helpers.ts";

const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const VERSION: string = denoJson.version;
const decoder = new TextDecoder();

/**
 * The flags `deno task compile` embeds, with `--allow-run`'s path replaced
 * by `runPath` when one is given.
 */
function embeddedFlags(runPath?: string): string[] {
  const words = (denoJson.tasks.compile as string).split(/\s+/);
  const flags = words.slice(
    words.indexOf("compile") + 1,
    words.indexOf("--output"),
  );
  return runPath === undefined
    ? flags
    : flags.map((f) =>
      f.startsWith("--allow-run=") ? `--allow-run=${runPath}` : f
    );
}

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
  const compiled = await run(Deno.execPath(), [
    "compile",
    "--quiet",
    ...embeddedFlags(),
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

compiledTest(
  "compiled binary refuses a host outside its embedded --allow-net, in one line that names its hosts",
  async () => {
    const out = await run(binary, ["--host", "10.1.2.3", "--port", "0"], {
      timeoutMs: 15_000,
    });
    assertEquals(out.code, 1, out.stderr);
    assertEquals(
      out.stderr,
      `upcase: ${netPermissionMessage("10.1.2.3", true)}\n`,
    );
  },
);

compiledTest(
  "compiled binary away from its install path refuses --workers in one line",
  async () => {
    const out = await run(
      binary,
      ["--workers", "2", "--host", "127.0.0.1", "--port", "0"],
      { timeoutMs: 15_000 },
    );
    assertEquals(out.code, 1, out.stderr);
    assertMatch(
      out.stderr,
      /^upcase: --workers cannot start \S+: this binary was compiled to start itself from another path only; .*\n$/,
    );
  },
);

Deno.test("the compile task's permissions under deno run: --workers 2 serves, with the supervisor's admin endpoint", async () => {
  await using server = await ServerProcess.start(
    ["--workers", "2", "--admin", "127.0.0.1:0"],
    {
      command: [
        Deno.execPath(),
        "run",
        ...embeddedFlags(Deno.execPath()),
        `${ROOT}main.ts`,
      ],
      ready: /listening on \S+ with 2 workers/,
    },
  );
  const data = randomBytes(100_000, 31);
  assertEquals(await exchange(server.port, data), asciiUpper(data));
  const line = await server.waitForLine(/admin listening on .* \(totals/);
  const admin = Number(/:(\d+) \(totals/.exec(line)?.[1]);
  assertEquals((await get(admin, "/readyz")).body, "ready");
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
});

Deno.test("the compile task's permissions under deno run: --host ::1 serves (an IPv6 host in a scoped --allow-net)", async () => {
  await using server = await ServerProcess.start(["--host", "::1"], {
    command: [Deno.execPath(), "run", ...embeddedFlags(), `${ROOT}main.ts`],
  });
  const data = randomBytes(1000, 32);
  assertEquals(
    await exchange(server.port, data, { hostname: "::1" }),
    asciiUpper(data),
  );
});

Deno.test("the compile task's permissions under deno run: a host outside its --allow-net, or --workers run from elsewhere, fail in one line", async () => {
  const outside = await runCli(["--host", "10.1.2.3", "--port", "0"], {
    permissions: embeddedFlags(),
  });
  assertEquals(outside.code, 1, outside.stderr);
  assertMatch(
    outside.stderr,
    /^upcase: Network access is not allowed[^\n]*\n$/,
  );
  // The task's --allow-run names the binary's install path, not deno.
  const workers = await runCli(
    ["--workers", "2", "--host", "127.0.0.1", "--port", "0"],
    { permissions: embeddedFlags() },
  );
  assertEquals(workers.code, 1, workers.stderr);
  assertEquals(
    workers.stderr,
    `upcase: --workers needs --allow-run to start its worker processes (at least --allow-run=${Deno.execPath()})\n`,
  );
});
