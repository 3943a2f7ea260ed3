/**
 * The upcase command as users run it: a child process, started through
 * `deno run` (or `deno task start`), judged by its exit code, its output and
 * whether it serves.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { ENV_NAMES, OPTIONS } from "../../src/cli/config.ts";
import { V8_FLAGS } from "../../src/cli/v8_flags.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../../src/logging/logging.ts";
import {
  asciiUpper,
  exchange,
  randomBytes,
  ROOT,
  runCli,
  ServerProcess,
  utf8,
} from "../_helpers.ts";

const ENV_PERMISSIONS = ["--allow-net", "--allow-env"];
const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));

function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Connects, sends `data`, half-closes, and returns the reply and the client's port. */
async function echo(
  port: number,
  data: Uint8Array,
): Promise<{ reply: Uint8Array; clientPort: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const chunks: Uint8Array[] = [];
    const reading = (async () => {
      const buf = new Uint8Array(64 * 1024);
      for (let n; (n = await conn.read(buf)) !== null;) {
        chunks.push(buf.slice(0, n));
      }
    })();
    let written = 0;
    while (written < data.length) {
      written += await conn.write(data.subarray(written));
    }
    await conn.closeWrite();
    await reading;
    const reply = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      reply.set(c, at);
      at += c.length;
    }
    return { reply, clientPort: conn.localAddr.port };
  } finally {
    conn.close();
  }
}

interface BadInput {
  /** What the test name shows. */
  label: string;
  args: string[];
  env?: Record<string, string>;
  /** What the one line on stderr must contain. */
  mentions: string[];
}

const allowedFlags = [
  ...OPTIONS.map((o) => `--${o.flag}`),
  "--help",
  "--version",
];

// Should the CLI ever start a server where it must not, it listens on
// loopback only, on a free port.
const SAFE = ["--host", "127.0.0.1", "--port", "0"];

const BAD_INPUTS: BadInput[] = [
  {
    label: "an unknown flag",
    args: ["--bogus"],
    mentions: ['"--bogus"', ...allowedFlags],
  },
  {
    label: "--port 70000",
    args: ["--port", "70000"],
    mentions: ["--port", '"70000"', "0-65535"],
  },
  {
    label: "--port abc",
    args: ["--port", "abc"],
    mentions: ["--port", '"abc"', "0-65535"],
  },
  {
    label: "--log-level loud",
    args: ["--log-level", "loud"],
    mentions: ["--log-level", '"loud"', ...LOG_LEVELS],
  },
  {
    label: "--log-format xml",
    args: ["--log-format", "xml"],
    mentions: ["--log-format", '"xml"', ...LOG_FORMATS],
  },
  {
    label: "--drain-timeout soon",
    args: ["--drain-timeout", "soon"],
    mentions: ["--drain-timeout", '"soon"'],
  },
  {
    label: "--drain-timeout -1",
    args: ["--drain-timeout", "-1"],
    mentions: ["--drain-timeout", '"-1"'],
  },
  {
    label: "a positional argument",
    args: ["serve"],
    mentions: ['"serve"'],
  },
  {
    label: "UPCASE_PORT=99999 in the environment",
    args: [],
    env: { UPCASE_PORT: "99999" },
    mentions: ["UPCASE_PORT", '"99999"', "0-65535"],
  },
  {
    label: "--unicode=maybe",
    args: ["--unicode=maybe"],
    mentions: ["--unicode", '"maybe"'],
  },
  {
    // Taken as "off" once, which served 0.0.0.0:8000 instead.
    label: '--unix ""',
    args: ["--unix", ""],
    mentions: ["--unix", '""', "empty"],
  },
  {
    label: "--tls-key without --tls-cert",
    args: ["--tls-key", "k.pem"],
    mentions: ["Cannot use --tls-key without --tls-cert"],
  },
];

// Only --host is added in front of the bad input: a --port would hide the
// UPCASE_PORT case and take part in the --port cases.
for (const bad of BAD_INPUTS) {
  Deno.test(`cli rejects ${bad.label} with exit 2 and one line`, async () => {
    const out = await runCli(["--host", "127.0.0.1", ...bad.args], {
      permissions: ENV_PERMISSIONS,
      ...(bad.env ? { env: bad.env } : {}),
    });
    assertEquals(out.code, 2, out.stderr);
    assertEquals(out.stdout, "");
    // The only line is the error, so no "listening on" line was written:
    // the process ended without starting a server.
    const lines = nonEmptyLines(out.stderr);
    assertEquals(lines.length, 1, `one line, got:\n${out.stderr}`);
    const line = lines[0]!;
    assertMatch(line, /^upcase: [A-Z]/);
    for (const part of bad.mentions) {
      assert(line.includes(part), `"${line}" mentions ${part}`);
    }
  });
}

Deno.test("cli lets a flag beat the environment", async () => {
  await using server = await ServerProcess.start(["--log-format", "text"], {
    permissions: ENV_PERMISSIONS,
    env: { UPCASE_LOG_FORMAT: "json" },
  });
  const listening = await server.waitForLine(/listening on /);
  assertMatch(
    listening,
    /^\S+ \[INF\] upcase\.server: listening on 127\.0\.0\.1:\d+$/,
  );
  // A served connection also proves that main() has wired its signal
  // handlers, which it does after the "listening on" line.
  assertEquals(await exchange(server.port, utf8("env")), utf8("ENV"));
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
  for (const line of server.lines) {
    assert(!line.startsWith("{"), `a text line, not JSON: ${line}`);
  }
});

Deno.test("cli takes an option from the environment when no flag sets it", async () => {
  await using server = await ServerProcess.start([], {
    permissions: ENV_PERMISSIONS,
    env: { UPCASE_LOG_FORMAT: "json" },
  });
  // Served first, so that the signal handlers are in place (see above).
  assertEquals(await exchange(server.port, utf8("env")), utf8("ENV"));
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
  const records = server.lines.map((l) => JSON.parse(l));
  assert(records.length >= 5, server.lines.join("\n"));
  assertEquals(
    records[0].message,
    `listening on 127.0.0.1:${server.port}`,
  );
});

Deno.test("cli --help exits 0 and lists every option with its variable", async () => {
  const out = await runCli(SAFE.concat("--help"), {
    permissions: ["--allow-net"],
  });
  assertEquals(out.code, 0);
  assertEquals(out.stderr, "");
  const lines = out.stdout.split("\n");
  for (const option of OPTIONS) {
    const flag = option.value
      ? `--${option.flag} ${option.value}`
      : `--${option.flag}`;
    const row = lines.find((l) => l.trimStart().startsWith(`${flag} `));
    assert(row !== undefined, `a row for ${flag} in:\n${out.stdout}`);
    assert(row?.includes(`env ${option.env}`), `${flag} names ${option.env}`);
  }
});

Deno.test("cli --version prints upcase and the version from deno.json", async () => {
  const out = await runCli(SAFE.concat("--version"), {
    permissions: ["--allow-net"],
  });
  assertEquals(out.code, 0);
  assertEquals(out.stderr, "");
  assertEquals(out.stdout, `upcase ${denoJson.version}\n`);
});

Deno.test("cli exits 1 with one line when the port is already in use", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  const out = await runCli(["--host", "127.0.0.1", "--port", `${port}`], {
    permissions: ["--allow-net"],
  });
  assertEquals(out.code, 1, out.stderr);
  assertEquals(out.stdout, "");
  const lines = nonEmptyLines(out.stderr);
  assertEquals(lines.length, 1, out.stderr);
  assert(lines[0]!.includes(`127.0.0.1:${port}`), lines[0]);
  assert(lines[0]!.includes("already in use"), lines[0]);
});

Deno.test("cli exits 1 with one line when the address is not on this machine", async () => {
  // 192.0.2.1 is TEST-NET-1: no interface here has it, so bind fails locally
  // with EADDRNOTAVAIL and no packet is sent.
  const out = await runCli(["--host", "192.0.2.1", "--port", "0"], {
    permissions: ["--allow-net"],
  });
  assertEquals(out.code, 1, out.stderr);
  assertEquals(out.stdout, "");
  const lines = nonEmptyLines(out.stderr);
  assertEquals(lines.length, 1, out.stderr);
  assert(lines[0]!.includes("192.0.2.1:0"), lines[0]);
  assert(lines[0]!.includes("not available"), lines[0]);
});

Deno.test("cli without net permission exits 1 with one line naming --allow-net", async () => {
  const out = await runCli(SAFE, {
    permissions: [],
  });
  assertEquals(out.code, 1, out.stderr);
  assertEquals(out.stdout, "");
  const lines = nonEmptyLines(out.stderr);
  assertEquals(lines.length, 1, out.stderr);
  assert(lines[0]!.includes("--allow-net"), lines[0]);
  assert(
    !lines.some((l) => l.startsWith("    at ")),
    "no stack trace",
  );
});

Deno.test("cli --port 0 logs the port it picked and serves on it", async () => {
  await using server = await ServerProcess.start([]);
  const line = await server.waitForLine(/listening on /);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)$/.exec(line)?.[1]);
  assert(port > 0 && port <= 65535, line);
  const data = randomBytes(200_000, 11);
  assertEquals(await exchange(port, data), asciiUpper(data));
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
});

Deno.test("cli --log-format json writes only JSON lines, with the close record's fields", async () => {
  await using server = await ServerProcess.start(["--log-format", "json"]);
  const data = randomBytes(70_000, 12);
  const { reply, clientPort } = await echo(server.port, data);
  assertEquals(reply, asciiUpper(data));
  await server.waitForLine(/ closed /);
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);

  const records = server.lines.map((l) => JSON.parse(l));
  for (const r of records) {
    assertEquals(typeof r["@timestamp"], "string");
    assertEquals(typeof r.level, "string");
    assertEquals(typeof r.message, "string");
  }
  const opened = records.filter((r) => / opened from /.test(r.message));
  const closed = records.filter((r) => / closed /.test(r.message));
  assertEquals(opened.length, 1, server.lines.join("\n"));
  assertEquals(closed.length, 1, server.lines.join("\n"));
  const c = closed[0];
  assertEquals(c.id, opened[0].id);
  assertEquals(c.peer, `127.0.0.1:${clientPort}`);
  assertEquals(c.bytesIn, data.length);
  assertEquals(c.bytesOut, data.length);
  assertEquals(typeof c.durationMs, "number");
  assert(c.durationMs >= 0, `durationMs ${c.durationMs}`);
  assertEquals(c.reason, "eof");
  assert(
    records.some((r) => /shutdown complete: 0 drained, 0 cut/.test(r.message)),
    server.lines.join("\n"),
  );
});

Deno.test("cli --log-level debug previews payloads with control characters escaped", async () => {
  await using server = await ServerProcess.start(["--log-level", "debug"]);
  const payload = utf8("a\x1b[2Jb\n");
  assertEquals(await exchange(server.port, payload), asciiUpper(payload));
  const preview = await server.waitForLine(/received 7 bytes/);
  assert(preview.includes("a\\x1b[2Jb\\n"), preview);
  await server.waitForLine(/ closed /);
  assert(
    !server.lines.some((l) => l.includes("\x1b")),
    "no raw ESC byte in the log",
  );
});

Deno.test("cli at the default info level logs no payload preview", async () => {
  await using server = await ServerProcess.start([]);
  const payload = utf8("a\x1b[2Jb\n");
  assertEquals(await exchange(server.port, payload), asciiUpper(payload));
  // The preview would be written before the close record of its connection.
  await server.waitForLine(/ closed /);
  assert(
    !server.lines.some((l) => /received \d+ bytes/.test(l)),
    server.lines.join("\n"),
  );
  assert(!server.lines.some((l) => l.includes("2J")), "no payload in the log");
});

for (const task of ["start", "compile"]) {
  Deno.test(`deno.json's ${task} task grants only --allow-net and upcase's variables`, () => {
    const line: string = denoJson.tasks[task];
    const words = line.split(/\s+/);
    const allowEnv = words.find((w) => w.startsWith("--allow-env=")) ?? "";
    assert(allowEnv !== "", line);
    const names = allowEnv.slice("--allow-env=".length).split(",");
    assertEquals([...names].sort(), [...ENV_NAMES].sort());
    assertEquals(new Set(names).size, names.length, "no name twice");
    // Every other flag is named here, so that -A, --allow-all, --allow-read,
    // --allow-write, --allow-run or a short form (-R, -W) cannot slip in.
    const flags = words.filter((w) => w.startsWith("-") && w !== allowEnv)
      .map((w) => w.replace(/=.*/, "="));
    // The binary starts itself as the --workers processes, which listen
    // with reusePort: that takes --allow-run and --unstable-net, and a
    // compiled binary cannot be given them later. Both it and the network
    // are scoped (tests/deploy_test.ts checks to what).
    const expected = task === "compile"
      ? [
        "--v8-flags=",
        "--unstable-net",
        "--allow-run=",
        "--allow-net=",
        "--output",
      ]
      : ["--v8-flags=", "--allow-net"];
    assertEquals(flags, expected, line);
    // The same V8 flags as the workers that a supervisor starts.
    assert(words.includes(V8_FLAGS), line);
  });
}

Deno.test("deno task start serves clients", async () => {
  await using server = await ServerProcess.start([], {
    command: [Deno.execPath(), "task", "--cwd", ROOT, "start"],
  });
  const data = randomBytes(100_000, 13);
  assertEquals(await exchange(server.port, data), asciiUpper(data));
  // deno task passes the signal on to the server, which shuts down cleanly.
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
  await server.waitForLine(/shutdown complete/);
});
