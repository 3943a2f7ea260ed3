import { assert, assertEquals, assertMatch } from "@std/assert";
import { ENV_NAMES, OPTIONS } from "../src/config.ts";
import { VERSION } from "../src/version.ts";
import { exchange, ROOT, runCli, ServerProcess, utf8 } from "./_helpers.ts";

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

Deno.test("cli rejects bad input with exit 2 and one line naming the option", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [
      ["--bogus"],
      {},
      /Unknown option "--bogus": allowed options are --host, --port/,
    ],
    [["--port", "70000"], {}, /--port: "70000" is not in 0-65535/],
    [["--port", "abc"], {}, /--port: "abc" is not a port number/],
    [
      ["--log-level", "loud"],
      {},
      /--log-level: "loud" is not one of trace, debug, info, warning, error/,
    ],
    [
      ["--log-format", "xml"],
      {},
      /--log-format: "xml" is not one of text, json/,
    ],
    [
      ["--drain-timeout", "soon"],
      {},
      /--drain-timeout: "soon" is not a number of seconds/,
    ],
    [["--drain-timeout", "-1"], {}, /--drain-timeout: "-1"/],
    [
      ["--max-connections", "lots"],
      {},
      /--max-connections: "lots" is not a whole number/,
    ],
    [["--unicode=maybe"], {}, /--unicode: "maybe" is not true or false/],
    [["serve"], {}, /Unexpected argument "serve"/],
    [[], { UPCASE_PORT: "99999" }, /UPCASE_PORT: "99999" is not in 0-65535/],
  ];
  for (const [args, env, message] of cases) {
    const out = await runCli(args, {
      permissions: ["--allow-net", "--allow-env"],
      env,
    });
    assertEquals(out.code, 2, `${args.join(" ")} exits 2`);
    assertEquals(out.stdout, "", `${args.join(" ")} prints nothing on stdout`);
    assertEquals(
      lines(out.stderr).length,
      1,
      `${args.join(" ")}: one line, got ${out.stderr}`,
    );
    assertMatch(out.stderr, message);
  }
});

Deno.test("cli --help lists every option with its variable, and --version prints the version", async () => {
  const help = await runCli(["--help"]);
  assertEquals(help.code, 0);
  for (const option of OPTIONS) {
    assert(help.stdout.includes(`--${option.flag}`), option.flag);
    assert(help.stdout.includes(option.env), option.env);
  }
  const version = await runCli(["--version"]);
  assertEquals(version.code, 0);
  assertEquals(version.stdout.trim(), `upcase ${VERSION}`);
});

Deno.test("cli exits 1 with one line when the port is in use or the address is not here", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const inUse = await runCli([
    "--host",
    "127.0.0.1",
    "--port",
    String(taken.addr.port),
  ]);
  assertEquals(inUse.code, 1);
  assertEquals(lines(inUse.stderr), [
    `upcase: Cannot listen on 127.0.0.1:${taken.addr.port}: the address is already in use`,
  ]);
  // 192.0.2.1 is TEST-NET-1: never assigned to this machine, so bind fails
  // locally and no packet is sent.
  const notHere = await runCli(["--host", "192.0.2.1", "--port", "0"]);
  assertEquals(notHere.code, 1);
  assertEquals(lines(notHere.stderr), [
    "upcase: Cannot listen on 192.0.2.1:0: the address is not available on this machine",
  ]);
});

Deno.test("cli without net permission names the flag it needs, with no stack trace", async () => {
  const out = await runCli(["--port", "0"], { permissions: [] });
  assertEquals(out.code, 1);
  const [line, ...more] = lines(out.stderr);
  assertEquals(more, []);
  assertMatch(
    line!,
    /^upcase: Network access is not allowed: run with --allow-net/,
  );
});

Deno.test("cli lets a flag beat the environment", async () => {
  const permissions = ["--allow-net", "--allow-env"];
  const env = { UPCASE_LOG_FORMAT: "json" };
  {
    await using server = await ServerProcess.start([], { permissions, env });
    assertEquals(
      JSON.parse(server.lines[0]!).message,
      `listening on 127.0.0.1:${server.port}`,
    );
  }
  {
    await using server = await ServerProcess.start(["--log-format", "text"], {
      permissions,
      env,
    });
    assertMatch(
      server.lines[0]!,
      /\[INF\] upcase\.server: listening on 127\.0\.0\.1:\d+$/,
    );
  }
});

Deno.test("cli --log-format json writes one object per line with the connection's fields", async () => {
  await using server = await ServerProcess.start(["--log-format", "json"]);
  await exchange(server.port, utf8("hello"));
  await server.waitForLine(/closed/);
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
  const records = server.lines.map((l) => JSON.parse(l));
  const closed = records.find((r) => r.reason !== undefined);
  assertEquals(closed.bytesIn, 5);
  assertEquals(closed.bytesOut, 5);
  assertEquals(closed.reason, "eof");
  assertEquals(typeof closed.id, "number");
  assertMatch(closed.peer, /^127\.0\.0\.1:\d+$/);
  assertEquals(typeof closed.durationMs, "number");
  assert(
    records.some((r) => r.message === "shutdown complete: 0 drained, 0 cut"),
  );
});

Deno.test("cli at debug level previews payloads with control characters escaped", async () => {
  await using debug = await ServerProcess.start(["--log-level", "debug"]);
  await exchange(debug.port, utf8("a\x1b[2Jb\n"));
  const preview = await debug.waitForLine(/received 7 bytes/);
  assert(preview.endsWith("received 7 bytes: a\\x1b[2Jb\\n"), preview);
  assert(
    !debug.lines.some((l) => l.includes("\x1b")),
    "no raw escape byte reaches the log",
  );

  await using info = await ServerProcess.start([]);
  await exchange(info.port, utf8("quiet"));
  await info.waitForLine(/closed \(eof\)/);
  assert(
    !info.lines.some((l) => l.includes("received")),
    "no preview at info level",
  );
});

Deno.test("deno.json's start and compile tasks grant only net and upcase's variables", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const task of ["start", "compile"]) {
    const line: string = config.tasks[task];
    const allowEnv = /--allow-env=(\S+)/.exec(line)?.[1]?.split(",");
    assertEquals(allowEnv, [...ENV_NAMES], `${task} --allow-env`);
    const flags = line.split(/\s+/).filter((w) =>
      w.startsWith("--allow") || w === "-A"
    );
    assertEquals(flags.map((f) => f.replace(/=.*/, "")), [
      "--allow-net",
      "--allow-env",
    ], task);
  }
});

Deno.test("deno task start serves clients", async () => {
  await using server = await ServerProcess.start([], {
    command: [Deno.execPath(), "task", "--cwd", ROOT, "start"],
  });
  const reply = await exchange(server.port, utf8("via task"));
  assertEquals(new TextDecoder().decode(reply), "VIA TASK");
  // deno task passes SIGTERM on to the server; a SIGKILL would leave the
  // server running with the pipes open.
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 0);
});
