/**
 * The admin endpoint against a real server on 127.0.0.1 port 0, driven by
 * real sockets: the metrics must move as the traffic predicts and agree with
 * the close log lines, and the probes must follow a drain and the
 * connection limit.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertRejects,
} from "@std/assert";
import { serveAdmin } from "../../src/admin/server.ts";
import type { HttpServeLimits } from "../../src/http/server.ts";
import { renderMetrics } from "../../src/admin/prometheus.ts";
import type { ServeOptions } from "../../src/server/serve.ts";
import { serveOn, TRANSPORT } from "../_transport.ts";
import { ServerStats } from "../../src/server/stats.ts";
import {
  finish,
  get,
  parseMetrics,
  rawExchange,
  readToEnd,
  roundTrip,
  sample,
  within,
  withLogs,
} from "../_admin.ts";
import {
  asciiUpper,
  assertAccountedFor,
  exchange,
  needs,
  randomBytes,
  readExactly,
} from "../_helpers.ts";

async function start(options: ServeOptions = {}, limits: HttpServeLimits = {}) {
  const server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...options,
  });
  const admin = serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    server,
    onListen() {},
    ...limits,
  });
  return {
    server,
    admin,
    port: admin.addr.port,
    connect: () =>
      Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
    async [Symbol.asyncDispose]() {
      // The admin server outlives the data server's drain, as in main.ts.
      await server.shutdown();
      await admin.shutdown();
    },
  };
}

async function scrape(port: number): Promise<Map<string, number>> {
  const { status, body } = await get(port, "/metrics");
  assertEquals(status, 200, body);
  return parseMetrics(body);
}

const CLOSED = /^connection \d+ closed/;

Deno.test("serveAdmin /metrics moves as the traffic predicts and agrees with the close logs", async () => {
  await withLogs(async (logs) => {
    await using t = await start();
    const sizes = [5, 1000, 70_000];
    for (const [i, size] of sizes.entries()) {
      const data = randomBytes(size, i + 1);
      assertEquals(
        await exchange(t.server.addr.port, data.slice()),
        asciiUpper(data),
      );
    }
    // The server counts a connection right after it logs the close; the
    // scrape below is an HTTP round trip, so it is answered after that.
    await logs.until(CLOSED, sizes.length);
    const held = await t.connect();
    assertEquals(await roundTrip(held, "held on"), "HELD ON");

    let m = await scrape(t.port);
    const sent = sizes.reduce((a, b) => a + b);
    assertEquals(sample(m, 'upcase_connections_total{reason="eof"}'), 3);
    for (const reason of ["reset", "shutdown", "idle", "error"]) {
      assertEquals(
        sample(m, `upcase_connections_total{reason="${reason}"}`),
        0,
      );
    }
    assertEquals(sample(m, "upcase_connections_accepted_total"), 4);
    assertEquals(sample(m, "upcase_connections_active"), 1);
    // The held connection's bytes count while it is still open.
    assertEquals(sample(m, "upcase_bytes_received_total"), sent + 7);
    assertEquals(sample(m, "upcase_bytes_sent_total"), sent + 7);
    assertEquals(sample(m, "upcase_connection_duration_seconds_count"), 3);
    assertEquals(
      sample(m, 'upcase_connection_duration_seconds_bucket{le="+Inf"}'),
      3,
    );
    assertEquals(sample(m, "upcase_draining"), 0);
    assertEquals(sample(m, "upcase_accepting_paused"), 0);

    assertEquals(await finish(held), 0);
    await logs.until(CLOSED, 4);
    m = await scrape(t.port);
    // Now every connection has its close line, and the totals are their sums.
    const closes = logs.records.filter((r) => CLOSED.test(logs.message(r)));
    const logged = (key: string) =>
      closes.reduce((n, r) => n + (r.properties[key] as number), 0);
    assertEquals(closes.map((r) => r.properties.reason), [
      "eof",
      "eof",
      "eof",
      "eof",
    ]);
    assertEquals(
      sample(m, 'upcase_connections_total{reason="eof"}'),
      closes.length,
    );
    assertEquals(sample(m, "upcase_connections_active"), 0);
    assertEquals(sample(m, "upcase_bytes_received_total"), logged("bytesIn"));
    assertEquals(sample(m, "upcase_bytes_sent_total"), logged("bytesOut"));
    assertEquals(logged("bytesIn"), sent + 7);
    assertEquals(
      sample(m, "upcase_connection_duration_seconds_count"),
      closes.length,
    );
    // The log rounds each duration to 0.1 ms, and the histogram reads the
    // clock a moment after the log line.
    const sum = sample(m, "upcase_connection_duration_seconds_sum");
    const loggedSeconds = logged("durationMs") / 1000;
    assert(
      Math.abs(sum - loggedSeconds) < 0.001 * closes.length,
      `histogram sum ${sum} s, logs ${loggedSeconds} s`,
    );
  });
});

Deno.test("serveAdmin /metrics counts refusals over the per-address limit", async () => {
  await withLogs(async (logs) => {
    await using t = await start({ maxConnectionsPerIp: 1 });
    const held = await t.connect();
    assertEquals(await roundTrip(held, "a"), "A");
    const refused = await t.connect();
    // Closed unserved: the client reads an end (or a reset) and no echo.
    await refused.write(new TextEncoder().encode("b")).catch(() => 0);
    assertEquals(await refused.read(new Uint8Array(1)).catch(() => null), null);
    refused.close();
    await logs.until(/over the limit of 1 per address/);
    const m = await scrape(t.port);
    assertEquals(sample(m, "upcase_connections_refused_total"), 1);
    // Accepted, then refused: both counters have it.
    assertEquals(sample(m, "upcase_connections_accepted_total"), 2);
    assertAccountedFor(t.server.stats());
    await finish(held);
  });
});

async function promtool(
  text: string,
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await output;
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test({
  ...needs(["promtool"], "serveAdmin /metrics passes promtool check metrics"),
  async fn() {
    await using t = await start();
    const data = randomBytes(3000, 9);
    await exchange(t.server.addr.port, data);
    const held = await t.connect();
    assertEquals(await roundTrip(held, "x"), "X");
    // A lag to show: this process's loop is the server's, and a timer due
    // at most 100 ms into the stall fires 150 ms late or more.
    const until = performance.now() + 250;
    while (performance.now() < until) { /* busy, as a long computation */ }
    let body = "";
    for (let i = 0; i < 20; i++) {
      body = (await get(t.port, "/metrics")).body;
      if (sample(parseMetrics(body), "upcase_event_loop_lag_seconds") >= 0.15) {
        break;
      }
    }
    assertGreaterOrEqual(
      sample(parseMetrics(body), "upcase_event_loop_lag_max_seconds"),
      0.15,
    );
    const live = await promtool(body);
    assertEquals(live, { code: 0, output: "" }, body);
    await finish(held);

    // Samples a live server rarely has: accept errors, and label values that
    // need escaping.
    const stats = new ServerStats();
    stats.lag = { recentSeconds: 0.000001, maxSeconds: 12345.678901 };
    stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
    stats.closed({ bytesIn: 1, bytesOut: 1, reason: "idle" }, 4000);
    const odd = renderMetrics(stats.snapshot([]), {
      version: 'odd \\ "quoted"\nversion',
      deno: Deno.version.deno,
    });
    assertEquals(await promtool(odd), { code: 0, output: "" }, odd);

    // A control: promtool does reject a counter without the _total suffix
    // (it exits 3 for such lint problems).
    const broken = body.replaceAll(
      "upcase_bytes_sent_total",
      "upcase_bytes_sent",
    );
    const rejected = await promtool(broken);
    assert(rejected.code !== 0, rejected.output);
    assert(rejected.output.includes("_total"), rejected.output);
  },
});

Deno.test("serveAdmin /readyz turns 503 draining during a drain, and /healthz stays 200 until the end", async () => {
  await using t = await start({ drainTimeout: 60_000 });
  assertEquals(await get(t.port, "/readyz").then((r) => [r.status, r.body]), [
    200,
    "ready",
  ]);
  assertEquals(await get(t.port, "/healthz").then((r) => [r.status, r.body]), [
    200,
    "ok",
  ]);
  const held = await t.connect();
  assertEquals(await roundTrip(held, "before"), "BEFORE");

  const drained = t.server.shutdown();
  assertEquals(await get(t.port, "/readyz").then((r) => [r.status, r.body]), [
    503,
    "draining",
  ]);
  // The drain still serves the connection it has, so the process is healthy.
  assertEquals(await get(t.port, "/healthz").then((r) => [r.status, r.body]), [
    200,
    "ok",
  ]);
  assertEquals(sample(await scrape(t.port), "upcase_draining"), 1);
  assertEquals(await roundTrip(held, "during"), "DURING");
  assertEquals(sample(await scrape(t.port), "upcase_connections_active"), 1);

  assertEquals(await finish(held), 0);
  assertEquals(await drained, { drained: 1, cut: 0 });
  await t.server.finished;
  assertEquals(await get(t.port, "/healthz").then((r) => [r.status, r.body]), [
    503,
    "stopped",
  ]);
  assertEquals(await get(t.port, "/readyz").then((r) => r.status), 503);
});

Deno.test("serveAdmin /readyz stays 200 at --max-connections, where /metrics shows the pause until a slot frees", async () => {
  await withLogs(async (logs) => {
    await using t = await start({ maxConnections: 1 });
    const held = await t.connect();
    // The accept loop pauses in the same step in which it hands the
    // connection over, so once the echo is back the server is paused.
    assertEquals(await roundTrip(held, "first"), "FIRST");
    assertEquals(await get(t.port, "/readyz").then((r) => [r.status, r.body]), [
      200,
      "ready",
    ]);
    assertEquals(sample(await scrape(t.port), "upcase_accepting_paused"), 1);
    // A client in the backlog meanwhile takes the slot as soon as it frees,
    // so the server is paused again once that client has its echo.
    const waiting = await t.connect();
    await waiting.write(new TextEncoder().encode("second"));
    await finish(held);
    assertEquals(
      new TextDecoder().decode(await readExactly(waiting, 6)),
      "SECOND",
    );
    assertEquals(sample(await scrape(t.port), "upcase_accepting_paused"), 1);
    // With nobody waiting, a freed slot leaves the server accepting.
    await finish(waiting);
    await logs.until(/closed \(eof\)/, 2);
    assertEquals(sample(await scrape(t.port), "upcase_accepting_paused"), 0);
    assertEquals(await get(t.port, "/readyz").then((r) => [r.status, r.body]), [
      200,
      "ready",
    ]);
  });
});

Deno.test("serveAdmin /status.json lists the open connections with their bytes", async () => {
  await using t = await start({
    unicode: true,
    maxConnections: 10,
    idleTimeout: 5000,
  });
  const a = await t.connect();
  const b = await t.connect();
  assertEquals(await roundTrip(a, "abc"), "ABC");
  assertEquals(await roundTrip(b, "straße"), "STRASSE");
  const { status, body, headers } = await get(t.port, "/status.json");
  assertEquals(status, 200);
  assertEquals(headers.get("content-type"), "application/json; charset=utf-8");
  const json = JSON.parse(body);
  assertEquals(json.addr, `127.0.0.1:${t.server.addr.port}`);
  assertEquals(json.deno, Deno.version.deno);
  assertEquals(json.settings, {
    transport: TRANSPORT,
    unicode: true,
    drainTimeout: 10_000,
    maxConnections: 10,
    maxConnectionsPerIp: 0,
    idleTimeout: 5000,
    handshakeTimeout: 10_000,
  });
  assertEquals(json.activeTotal, 2);
  const rows = json.stats.active.map((
    c: { id: number; peer: string; bytesIn: number; bytesOut: number },
  ) => [c.id, c.peer, c.bytesIn, c.bytesOut]);
  const peer = (c: Deno.Conn) =>
    `127.0.0.1:${(c.localAddr as Deno.NetAddr).port}`;
  // "straße" is 7 bytes of UTF-8, and "STRASSE" 7 as well.
  assertEquals(rows, [[1, peer(a), 3, 3], [2, peer(b), 7, 7]]);
  await finish(a);
  await finish(b);
});

Deno.test("serveAdmin answers HEAD, 404 for unknown paths and 405 for other methods", async () => {
  await using t = await start();
  const head = await fetch(`http://127.0.0.1:${t.port}/metrics`, {
    method: "HEAD",
  });
  assertEquals([head.status, await head.text()], [200, ""]);
  assertEquals(
    head.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  assertEquals((await get(t.port, "/nope")).status, 404);
  const post = await get(t.port, "/metrics", { method: "POST", body: "x" });
  assertEquals(post.status, 405);
  assertEquals(post.headers.get("allow"), "GET, HEAD");
  const page = await get(t.port, "/");
  assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert(
    page.headers.get("content-security-policy")?.includes("default-src 'none'"),
  );
  assertEquals(page.headers.get("cache-control"), "no-store");
});

Deno.test("serveAdmin stops when its signal aborts, and shutdown() after that is harmless", async () => {
  await using server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  });
  const controller = new AbortController();
  const admin = serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    server,
    signal: controller.signal,
    onListen() {},
  });
  assertEquals((await get(admin.addr.port, "/healthz")).status, 200);
  controller.abort();
  await admin.finished;
  await admin.shutdown();
  await assertRejects(() =>
    fetch(`http://127.0.0.1:${admin.addr.port}/healthz`)
  );
});

Deno.test("serveAdmin logs where it listens unless onListen is given", async () => {
  await withLogs(async (logs) => {
    await using server = await serveOn({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
    });
    await using admin = serveAdmin({ hostname: "127.0.0.1", port: 0, server });
    await logs.until(/^admin listening on /);
    const line = logs.records.map(logs.message).find((m) =>
      m.startsWith("admin listening")
    );
    assertEquals(line, `admin listening on 127.0.0.1:${admin.addr.port}`);
    assertEquals(
      logs.records.find((r) => logs.message(r) === line)?.category,
      ["upcase", "admin"],
    );
  });
});

Deno.test("serveAdmin answers 408 and closes a request that stops after its first header line", async () => {
  await using t = await start({}, { headerTimeout: 500 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  await conn.write(
    new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: probe\r\n"),
  );
  // Bounded, so that a server without the deadline fails here rather than
  // hanging the test.
  let cut = false;
  const timer = setTimeout(() => {
    cut = true;
    conn.close();
  }, 10_000);
  const answer = await readToEnd(conn).catch(() => "").finally(() =>
    clearTimeout(timer)
  );
  assert(!cut, "the request was still open after 10 s");
  if (!cut) conn.close();
  assert(answer.startsWith("HTTP/1.1 408 Request Timeout\r\n"), answer);
});

Deno.test("serveAdmin holds clients over its connection limit in the backlog until a slot frees", async () => {
  await withLogs(async (logs) => {
    await using t = await start({}, { maxConnections: 2, headerTimeout: 1000 });
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port: t.port });
    using a = await connect();
    using b = await connect();
    for (const conn of [a, b]) {
      await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\n"));
    }
    await within(
      logs.until(/admin connection limit of 2 reached/),
      10_000,
      "no connection limit was reached",
    );
    // This one waits in the backlog until a held one is cut at the header
    // deadline; without the limit it would be answered at once.
    const probe = rawExchange(
      t.port,
      "GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n",
    );
    const first = await Promise.race([
      readToEnd(a).then(() => "a held client was cut"),
      readToEnd(b).then(() => "a held client was cut"),
      probe.then(() => "the probe was answered"),
    ]);
    assertEquals(first, "a held client was cut");
    assert((await probe).startsWith("HTTP/1.1 200 OK\r\n"));
  });
});

for (const hostname of ["0.0.0.0", "::"]) {
  Deno.test(`serveAdmin warns once that ${hostname} exposes the connection table`, async () => {
    await withLogs(async (logs) => {
      await using server = await serveOn({
        hostname: "127.0.0.1",
        port: 0,
        onListen() {},
      });
      await using admin = serveAdmin({ hostname, port: 0, server });
      const warnings = logs.records.filter((r) => r.level === "warning");
      assertEquals(warnings.length, 1, logs.records.map(logs.message).join());
      const text = logs.message(warnings[0]!);
      assert(text.includes(`:${admin.addr.port} is not on a loopback`), text);
      assert(text.includes("every client's address"), text);
    });
  });
}

for (const hostname of ["127.0.0.1", "127.1.2.3", "::1"]) {
  Deno.test(`serveAdmin does not warn on the loopback address ${hostname}`, async () => {
    await withLogs(async (logs) => {
      await using server = await serveOn({
        hostname: "127.0.0.1",
        port: 0,
        onListen() {},
      });
      await using _admin = serveAdmin({ hostname, port: 0, server });
      assertEquals(
        logs.records.filter((r) => r.level === "warning").map(logs.message),
        [],
      );
    });
  });
}
