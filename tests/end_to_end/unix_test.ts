/**
 * `--unix PATH`: serving on a Unix socket, tried with `nc -U` and `socat`;
 * the stale socket file a killed server leaves, a live socket and a regular
 * file at the path, and the file's removal at exit.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { serveOn } from "../_transport.ts";
import {
  asciiUpper,
  needs,
  randomBytes,
  readAll,
  runCli,
  runClient,
  ServerProcess,
} from "../_helpers.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A temporary folder, removed when the test is done with it. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "upcase_unix_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Exactly the permissions a Unix socket at `path` needs. */
function socketPermissions(path: string): string[] {
  return [
    `--allow-net=unix:${path}`,
    `--allow-read=${path},${path}.lock`,
    `--allow-write=${path},${path}.lock`,
  ];
}

function startUnix(path: string, args: string[] = []): Promise<ServerProcess> {
  return ServerProcess.start(["--unix", path, ...args], {
    permissions: socketPermissions(path),
  });
}

/** `nc -N -U`: sends `text`, half-closes, and returns what came back. */
async function ncUnix(path: string, text: string): Promise<string> {
  const out = await runClient("nc", ["-N", "-U", path], encoder.encode(text));
  assertEquals(out.code, 0, out.stderr);
  return decoder.decode(out.stdout);
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSocket === true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

Deno.test({
  ...needs(
    ["nc"],
    "unix nc -U gets its input back uppercased after half-close",
  ),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    await using server = await startUnix(path);
    assertMatch(
      await server.waitForLine(/listening on /),
      new RegExp(`listening on unix:${path}$`),
    );
    assertEquals(await ncUnix(path, "abc"), "ABC");
    await server.waitForLine(/connection 1 closed \(eof\): 3 bytes in/);
  },
});

Deno.test({
  ...needs(["socat"], "unix socat streams 1 MiB of binary data byte-exact"),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    await using server = await startUnix(path);
    const data = randomBytes(1024 * 1024, 21);
    // -t: after its input ends, socat waits up to this long for the rest of
    // the reply; the server's close ends it sooner.
    const out = await runClient(
      "socat",
      ["-t", "30", "-", `UNIX-CONNECT:${path}`],
      data,
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(out.stdout, asciiUpper(data));
    await server.waitForLine(/connection 1 closed \(eof\): 1048576 bytes in/);
  },
});

Deno.test({
  ...needs(
    ["nc"],
    "unix a stale socket file left by a killed server is removed at start",
  ),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    {
      await using crashed = await startUnix(path);
      crashed.child.kill("SIGKILL");
      await crashed.exit();
    }
    assert(await isSocket(path), "SIGKILL leaves the socket file behind");

    await using server = await startUnix(path);
    await server.waitForLine(
      new RegExp(`removed the stale socket file ${path}`),
    );
    assertEquals(await ncUnix(path, "fresh start"), "FRESH START");
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0);
    assert(!(await isSocket(path)), "the file is gone after exit");
  },
});

Deno.test({
  ...needs(["nc"], "unix a socket with a live server is not taken over"),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    await using first = await startUnix(path);

    const out = await runCli(["--unix", path], {
      permissions: socketPermissions(path),
    });
    assertEquals(out.code, 1, out.stderr);
    assertEquals(
      out.stderr,
      `upcase: Cannot listen on unix:${path}: the path is in use by a running server\n`,
    );
    // The running server still has its socket and serves on it; the lock
    // turned the second one away before it even connected to check.
    assertEquals(await ncUnix(path, "still mine"), "STILL MINE");
    await first.waitForLine(/connection 1 closed \(eof\): 10 bytes in/);
  },
});

Deno.test("unix a file that is not a socket is left alone, with one line and exit 1", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/upcase.sock`;
  await Deno.writeTextFile(path, "precious data\n");
  const out = await runCli(["--unix", path], {
    permissions: socketPermissions(path),
  });
  assertEquals(out.code, 1, out.stderr);
  assertEquals(
    out.stderr,
    `upcase: Cannot listen on unix:${path}: the path exists and is not a socket; it is left as it is\n`,
  );
  assertEquals(await Deno.readTextFile(path), "precious data\n");
});

Deno.test("unix without read and write permission for the path names the flags and exits 1", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/upcase.sock`;
  const out = await runCli(["--unix", path], { permissions: ["--allow-net"] });
  assertEquals(out.code, 1, out.stderr);
  assertEquals(
    out.stderr,
    `upcase: Listening on unix:${path} is not allowed: run with --allow-read=${path},${path}.lock --allow-write=${path},${path}.lock\n`,
  );
  assert(!(await isSocket(path)));
});

Deno.test("unix --unix with --tls-cert is a config error, exit 2", async () => {
  const out = await runCli([
    "--unix",
    "/tmp/upcase-never.sock",
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
  ], { permissions: [] });
  assertEquals(out.code, 2, out.stderr);
  assertMatch(
    out.stderr,
    /^upcase: Cannot use --tls-cert with --unix: [^\n]+\n$/,
  );
});

Deno.test("unix the socket file goes when the drain starts, also when a second SIGTERM cuts it", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/upcase.sock`;
  await using server = await startUnix(path, ["--drain-timeout", "60"]);
  // An open connection keeps the drain waiting, so the second signal is
  // what ends the process, through Deno.exit, which closes nothing itself.
  using held = await Deno.connect({ transport: "unix", path });
  await server.waitForLine(/connection 1 opened/);
  server.child.kill("SIGTERM");
  await server.waitForLine(/draining 1 connections/);
  assert(!(await isSocket(path)), "no new client can connect to a drain");
  server.child.kill("SIGTERM");
  assertEquals((await server.exit()).code, 128 + 15);
  assert(!(await isSocket(path)), "the file is gone after exit");
  // The server end closed without an answer: nothing was sent.
  assertEquals(await readAll(held.readable), new Uint8Array());
});

Deno.test("unix serve() on a path: the per-address limit does not apply, and close removes the file", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/upcase.sock`;
  {
    await using server = await serveOn({
      path,
      maxConnectionsPerIp: 1,
      onListen() {},
    });
    assertEquals(server.addr, { transport: "unix", path });
    // Two at once from the same machine: with TCP the second would be refused.
    using a = await Deno.connect({ transport: "unix", path });
    using b = await Deno.connect({ transport: "unix", path });
    for (const [conn, text] of [[a, "one"], [b, "two"]] as const) {
      await conn.write(encoder.encode(text));
      await conn.closeWrite();
    }
    assertEquals(decoder.decode(await readAll(a.readable)), "ONE");
    assertEquals(decoder.decode(await readAll(b.readable)), "TWO");
    assertEquals(server.stats().refused, 0);
  }
  assert(!(await isSocket(path)), "shutdown removed the socket file");
});

Deno.test({
  ...needs(
    ["nc"],
    "unix servers started at once on a stale path: one takes it, the others exit 1, none is orphaned",
  ),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    // Check, remove and listen are three steps; without a lock around them
    // a second server could remove the first one's fresh socket and bind
    // its own, leaving the first listening on a file nobody can reach.
    for (let round = 1; round <= 5; round++) {
      {
        await using crashed = await startUnix(path);
        crashed.child.kill("SIGKILL");
        await crashed.exit();
      }
      const racers = await Promise.allSettled(
        Array.from({ length: 6 }, () => startUnix(path)),
      );
      const winners = racers.flatMap((r) =>
        r.status === "fulfilled" ? [r.value] : []
      );
      try {
        assertEquals(
          winners.length,
          1,
          `round ${round}: servers that listened:\n${
            winners.map((w) => w.lines.join("\n")).join("\n---\n")
          }`,
        );
        for (const r of racers) {
          if (r.status === "rejected") {
            assertMatch(String(r.reason), /Cannot listen on unix:/);
          }
        }
        const winner = winners[0]!;
        assertEquals(await ncUnix(path, `round ${round}`), `ROUND ${round}`);
        await winner.waitForLine(/connection \d+ closed \(eof\): 7 bytes in/);
      } finally {
        for (const w of winners) await w[Symbol.asyncDispose]();
      }
    }
  },
});

Deno.test({
  ...needs(
    ["nc"],
    "unix a server leaves a stale path alone while another holds its lock, and exits 1",
  ),
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/upcase.sock`;
    {
      await using crashed = await startUnix(path);
      crashed.child.kill("SIGKILL");
      await crashed.exit();
    }
    // This test stands for a server in the middle of its own start.
    using lock = await Deno.open(`${path}.lock`, {
      read: true,
      write: true,
      create: true,
    });
    assert(await lock.tryLock(true), "the crashed server's lock went with it");
    const out = await runCli(["--unix", path], {
      permissions: socketPermissions(path),
    });
    assertEquals(out.code, 1, out.stderr);
    assertEquals(
      out.stderr,
      `upcase: Cannot listen on unix:${path}: the path is in use by a running server\n`,
    );
    assert(await isSocket(path), "the stale file was not touched");
    await lock.unlock();
    await using server = await startUnix(path);
    await server.waitForLine(/removed the stale socket file/);
    assertEquals(await ncUnix(path, "mine now"), "MINE NOW");
  },
});
