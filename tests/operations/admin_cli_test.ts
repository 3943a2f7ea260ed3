/**
 * The admin endpoint of the real command: probes through a drain, a port in
 * use, the warning for an address other machines can reach, and what the
 * issue reproduced: the process, and every connection it holds, must
 * survive the admin port meeting descriptor exhaustion, in one process and
 * with --workers.
 *
 * @module
 */
import { denoTransportOnly, EMFILE_SILENT, TRANSPORT } from "../_transport.ts";
import { assert, assertEquals, assertMatch } from "@std/assert";
import { startWorkers } from "../../bench/capacity.ts";
import { parseMetrics, rawExchange, roundTrip, sample } from "../_admin.ts";
import {
  asciiUpper,
  exchange,
  needs,
  randomBytes,
  ROOT,
  runCli,
  ServerProcess,
} from "../_helpers.ts";

async function adminPort(server: ServerProcess): Promise<number> {
  const line = await server.waitForLine(/admin listening on /);
  return Number(/admin listening on \S+:(\d+)/.exec(line)?.[1]);
}

// Low enough to run out with a few hundred clients; the issue's figure.
const FD_LIMIT = 128;
// `ulimit -n` applies to the server (and its workers) only.
const STARVED = ["sh", "-c", `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`];

function startStarved(args: string[]): Promise<ServerProcess> {
  return ServerProcess.start(args, {
    command: [
      ...STARVED,
      Deno.execPath(),
      "run",
      "--allow-net",
      `${ROOT}main.ts`,
    ],
  });
}

/** A real probe: curl's status code and body, as a kubelet would see them. */
async function curl(
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "30",
      "-w",
      "\n%{http_code}",
      `http://127.0.0.1:${port}${path}`,
    ],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const nl = text.lastIndexOf("\n");
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return { status: Number(text.slice(nl + 1)), body: text.slice(0, nl) };
}

/** Whether the process is still running at this moment. */
function watchExit(server: ServerProcess): () => boolean {
  let exited = false;
  server.child.status.then(() => void (exited = true));
  return () => !exited;
}

const DATA_FULL = /upcase\.accept: accept failed: .*Too many open files/;
const ADMIN_FULL = /upcase\.admin: accept failed: .*Too many open files/;

Deno.test("upcase --admin serves probes and metrics, and /readyz turns 503 while SIGTERM drains", async () => {
  await using server = await ServerProcess.start([
    "--admin",
    "127.0.0.1:0",
    "--drain-timeout",
    "30",
  ]);
  const base = `http://127.0.0.1:${await adminPort(server)}`;
  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { status: res.status, body: await res.text() };
  };
  assertEquals(await get("/healthz"), { status: 200, body: "ok" });
  assertEquals(await get("/readyz"), { status: 200, body: "ready" });

  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.port,
  });
  await client.write(new TextEncoder().encode("abc"));
  const reply = new Uint8Array(3);
  assertEquals(await client.read(reply), 3);
  const metrics = (await get("/metrics")).body;
  assertMatch(metrics, /^upcase_connections_active 1$/m);
  assertMatch(metrics, /^upcase_bytes_received_total 3$/m);
  assertMatch(
    metrics,
    new RegExp(
      `^upcase_build_info\\{version="[^"]+",deno="[^"]+",transport="${TRANSPORT}"\\} 1$`,
      "m",
    ),
  );

  server.child.kill("SIGTERM");
  await server.waitForLine(/shutting down/);
  assertEquals(await get("/readyz"), { status: 503, body: "draining" });
  assertEquals((await get("/healthz")).status, 200);
  // The held connection still works during the drain; closing it ends it.
  await client.write(new TextEncoder().encode("d"));
  assertEquals(await client.read(reply), 1);
  client.close();
  assertEquals((await server.exit()).code, 0);
});

Deno.test("upcase --admin on a port in use prints one line and exits 1", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { code, stderr } = await runCli([
    "--port",
    "0",
    "--admin",
    `127.0.0.1:${taken.addr.port}`,
  ]);
  assertEquals(code, 1);
  const lines = stderr.trim().split("\n").filter((l) =>
    l.startsWith("upcase:")
  );
  assertEquals(lines.length, 1, stderr);
  assertMatch(lines[0]!, /in use.*--admin/);
});

Deno.test({
  ...denoTransportOnly(
    needs(
      ["curl"],
      "upcase --admin survives running out of descriptors: probes are answered once some free up, and every data connection is kept",
    ),
    EMFILE_SILENT,
  ),
  async fn() {
    await using server = await startStarved(["--admin", "127.0.0.1:0"]);
    const running = watchExit(server);
    const admin = await adminPort(server);

    // Data clients, one at a time, each held once its echo proves it was
    // accepted, until one is left in the backlog: the server is out of
    // descriptors.
    const full = server.waitForLine(DATA_FULL).then(() => "full" as const);
    const held: Deno.Conn[] = [];
    let waiting: Deno.Conn | undefined;
    for (let i = 0; i < FD_LIMIT && waiting === undefined; i++) {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: server.port,
      });
      const echo = roundTrip(conn, `client ${i}`).then(
        () => "served" as const,
        () => "closed" as const,
      );
      if (await Promise.race([echo, full]) === "served") held.push(conn);
      else waiting = conn;
    }
    const backlogged = waiting;
    if (!backlogged) throw new Error("the server never ran out of descriptors");

    // The probes a kubelet and Prometheus would send, now.
    const probes = Promise.all([
      curl(admin, "/healthz"),
      curl(admin, "/readyz"),
      curl(admin, "/metrics"),
    ]);
    // Awaited below; a process that dies first fails the wait for its line.
    probes.catch(() => {});
    await server.waitForLine(ADMIN_FULL);
    assert(running(), "the process died when the admin port met EMFILE");

    // Free some descriptors: the client in the backlog and eight held ones.
    backlogged.close();
    for (const conn of held.splice(0, 8)) conn.close();
    const [healthz, readyz, metrics] = await probes;
    assertEquals(healthz, { status: 200, body: "ok" });
    assertEquals(readyz, { status: 200, body: "ready" });
    assertEquals(metrics.status, 200);
    assert(sample(parseMetrics(metrics.body), "upcase_connections_active") > 0);

    // Every connection still held works, and the server still lists it.
    for (const [i, conn] of held.entries()) {
      assertEquals(await roundTrip(conn, `again ${i}`), `AGAIN ${i}`);
    }
    const status = JSON.parse((await curl(admin, "/status.json")).body);
    const listed = new Set(
      status.stats.active.map((c: { peer: string }) => c.peer),
    );
    for (const conn of held) {
      const port = (conn.localAddr as Deno.NetAddr).port;
      assert(listed.has(`127.0.0.1:${port}`), `client port ${port} was lost`);
    }
    assert(running());
    for (const conn of held) conn.close();
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
  },
});

Deno.test({
  ...needs(
    ["curl"],
    "upcase --admin survives hundreds of half-sent requests on a starved process, answers them 408, and serves probes once they go",
  ),
  async fn() {
    await using server = await startStarved(["--admin", "127.0.0.1:0"]);
    const running = watchExit(server);
    const admin = await adminPort(server);
    // More than the process has descriptors; each stops after its first
    // line, as in the issue.
    const halfSent = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: admin });
        await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\n"));
        return conn;
      }),
    );
    await server.waitForLine(/admin connection limit of 64 reached/);
    assert(running(), "the process died under half-sent requests");
    // The header deadline answers the held ones.
    const firstAnswer = await Promise.any(halfSent.map(async (conn) => {
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed without an answer");
      return new TextDecoder().decode(buf.subarray(0, n));
    }));
    assertMatch(firstAnswer, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    // The data port serves meanwhile.
    const data = randomBytes(10_000, 7);
    assertEquals(await exchange(server.port, data), asciiUpper(data));

    for (const conn of halfSent) conn.close();
    assertEquals(await curl(admin, "/healthz"), { status: 200, body: "ok" });
    assert(running());
    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
  },
});

Deno.test({
  ...denoTransportOnly(
    needs(
      ["curl"],
      "upcase --workers 2 --admin: a scrape while both workers are out of descriptors kills neither",
    ),
    EMFILE_SILENT,
  ),
  async fn() {
    await using server = await startWorkers(2, {
      args: ["--admin", "127.0.0.1:0"],
      prefix: STARVED,
    });
    const line = await server.waitForLine(/admin listening on .* \(totals/);
    const admin = Number(/:(\d+) \(totals/.exec(line)?.[1]);
    const exited = server.waitForLine(/worker \d \(pid \d+\) exited/).then(
      (l) => Promise.reject(new Error(l)),
      () => {},
    );
    // Raced below, where it fails the test.
    exited.catch(() => {});
    // Enough clients to fill both workers, however the kernel spreads them.
    const clients = await Promise.all(
      Array.from(
        { length: 2 * FD_LIMIT + 80 },
        () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
      ),
    );
    for (const id of [1, 2]) {
      await server.waitForLine(
        new RegExp(`^\\[w${id}\\] .*${DATA_FULL.source}`),
      );
    }
    // The supervisor fetches each worker's /status.json for the totals.
    const scrape = curl(admin, "/metrics");
    for (const id of [1, 2]) {
      await Promise.race([
        server.waitForLine(new RegExp(`^\\[w${id}\\] .*${ADMIN_FULL.source}`)),
        exited,
      ]);
    }
    assertEquals((await scrape).status, 200);

    for (const conn of clients) conn.close();
    for (const id of [1, 2]) {
      await Promise.race([
        server.waitForLine(
          new RegExp(`^\\[w${id}\\] .*upcase\\.admin: accepting again`),
        ),
        exited,
      ]);
    }
    const metrics = parseMetrics((await curl(admin, "/metrics")).body);
    assert(sample(metrics, "upcase_connections_accepted_total") > 0);
    assertEquals(
      server.lines.filter((l) => /worker \d \(pid \d+\) exited/.test(l)),
      [],
    );
  },
});

Deno.test("upcase --admin on 0.0.0.0 warns that it exposes every client's address; on 127.0.0.1 it does not", async () => {
  for (
    const [host, warns] of [["0.0.0.0", true], ["127.0.0.1", false]] as const
  ) {
    await using server = await ServerProcess.start(["--admin", `${host}:0`]);
    const admin = await adminPort(server);
    // Once it answers, its start-up lines are all out.
    const answer = await rawExchange(
      admin,
      "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assertMatch(answer, /^HTTP\/1\.1 200 OK\r\n/);
    const warning = server.lines.filter((l) =>
      l.includes("is not on a loopback address")
    );
    assertEquals(warning.length, warns ? 1 : 0, server.lines.join("\n"));
    if (warns) {
      assertMatch(
        warning[0]!,
        /\[WRN\] upcase\.admin: .*every client's address/,
      );
    }
  }
});
