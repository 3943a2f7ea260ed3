/**
 * `--max-connections` and `--max-connections-per-ip` with `--workers`: the
 * limits are the whole server's, and the supervisor's admin endpoint says
 * so. Real clients against the supervisor as a child process.
 *
 * @module
 */
import { denoTransportOnly } from "../_transport.ts";

// What the node engine does differently here (docs/deno_upstream.md §7).
const ENGINE_ACCEPTS_FIRST =
  "clients the engine accepted before the server asked are neither in the kernel's backlog nor in the waiting count this test adds up";
import { assertEquals, assertGreater } from "@std/assert";
import { chromium } from "playwright-core";
import type { StatsSnapshot } from "../../src/server/stats.ts";
import { finish, get, parseMetrics, roundTrip, sample } from "../_admin.ts";
import {
  asciiUpper,
  assertAccountedFor,
  exchange,
  needs,
  randomBytes,
  readExactly,
  runClient,
  ServerProcess,
} from "../_helpers.ts";
import { startSupervisor, supervisorAdminPort } from "../_workers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Status {
  workers?: number;
  activeTotal: number;
  settings: { maxConnections: number; maxConnectionsPerIp: number };
  stats: StatsSnapshot;
}

async function status(admin: number): Promise<Status> {
  return JSON.parse((await get(admin, "/status.json")).body);
}

/**
 * Clients over the limit that no worker has accepted yet: the accept queues
 * of the workers' listening sockets on `port`, as /proc/net/tcp shows them
 * (a listening socket's rx_queue). A worker holds the clients it accepted
 * while they wait (`waiting`), and leaves the rest in its backlog.
 */
async function backlog(port: number): Promise<number> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let queued = 0;
  for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n")) {
    const [, local, , state, queues] = line.trim().split(/\s+/);
    if (local?.endsWith(`:${hexPort}`) && state === "0A") {
      queued += parseInt(queues!.split(":")[1]!, 16);
    }
  }
  return queued;
}

/**
 * Asks the admin endpoint until `done` says yes; `check` runs on every
 * answer, so that what must never happen fails at once.
 */
async function until(
  admin: number,
  done: (s: Status) => boolean | Promise<boolean>,
  check: (s: Status) => void = () => {},
): Promise<Status> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const s = await status(admin);
    check(s);
    if (await done(s)) return s;
    if (performance.now() > deadline) {
      throw new Error(`Timed out; last status: ${JSON.stringify(s)}`);
    }
  }
}

function localPort(conn: Deno.Conn): number {
  return (conn.localAddr as Deno.NetAddr).port;
}

// Which worker served the client on `port`, from its "opened" line.
async function servedBy(server: ServerProcess, port: number): Promise<number> {
  const line = await server.waitForLine(
    new RegExp(`^\\[w\\d+\\] .*opened from 127\\.0\\.0\\.1:${port}$`),
  );
  return Number(/^\[w(\d+)\]/.exec(line)?.[1]);
}

/** Clients that each sent a line and wait for its echo. */
async function waitingClients(port: number, n: number) {
  const conns: Deno.Conn[] = [];
  const replied = new Set<number>();
  const replies: Promise<number>[] = [];
  for (let i = 0; i < n; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const line = `client ${String(i).padStart(2, "0")}\n`;
    await conn.write(encoder.encode(line));
    conns.push(conn);
    const reply = readExactly(conn, line.length).then((bytes) => {
      assertEquals(decoder.decode(bytes), line.toUpperCase());
      replied.add(i);
      return i;
    });
    // A client cut unserved (its worker crashed, or the test ended) fails
    // only where the test waits for it.
    reply.catch(() => {});
    replies.push(reply);
  }
  return { conns, replied, replies };
}

// With `max` clients served, `n` more wait; each close lets exactly one in,
// and the freed slots go to clients whichever worker holds them.
async function servesExactly(max: number, n: number): Promise<void> {
  await using supervised = await startSupervisor(2, {
    args: ["--max-connections", String(max), "--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const served: Deno.Conn[] = [];
  for (let i = 0; i < max; i++) {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    assertEquals(await roundTrip(conn, `served ${i}`), `SERVED ${i}`);
    served.push(conn);
  }
  const clients = await waitingClients(server.port, n);
  const noneServed = (s: Status) =>
    assertEquals(
      [...clients.replied],
      [],
      `a client over the limit was served: ${JSON.stringify(s.stats.active)}`,
    );
  const allWait = async (s: Status, left: number) =>
    s.stats.waiting + await backlog(server.port) === left;
  const full = await until(admin, (s) => allWait(s, n), noneServed);
  assertGreater(full.stats.waiting, 0);
  assertEquals([full.workers, full.settings.maxConnections], [2, max]);
  assertEquals([full.activeTotal, full.stats.paused], [max, true]);
  assertAccountedFor(full.stats);
  // Full is not unready: the pause shows on /metrics and the status page.
  assertEquals((await get(admin, "/readyz")).body, "ready");
  const metrics = parseMetrics((await get(admin, "/metrics")).body);
  assertEquals(sample(metrics, "upcase_connections_active"), max);
  assertEquals(sample(metrics, "upcase_accepting_paused"), 1);

  // Each close lets exactly one waiting client in: [closed, let in] ports.
  const handovers: [number, number][] = [];
  const pending = new Map(clients.replies.map((p, i) => [i, p]));
  for (let step = 1; step <= n; step++) {
    const closing = served.shift()!;
    const closedPort = localPort(closing);
    await finish(closing);
    const next = await Promise.race(pending.values());
    pending.delete(next);
    served.push(clients.conns[next]!);
    handovers.push([closedPort, localPort(clients.conns[next]!)]);
    await until(
      admin,
      (s) => s.activeTotal === max && allWait(s, n - step),
      () => assertEquals(clients.replied.size, step, "two were let in"),
    );
  }
  for (const conn of served) await finish(conn);
  const ready = await until(admin, (s) => !s.stats.paused);
  assertEquals([ready.activeTotal, ready.stats.waiting], [0, 0]);
  assertEquals((await get(admin, "/readyz")).body, "ready");

  // Some slot freed in one worker went to a client the other one held.
  const across = [];
  for (const [closed, next] of handovers) {
    const [from, to] = [
      await servedBy(server, closed),
      await servedBy(server, next),
    ];
    if (from !== to) across.push(`w${from}->w${to}`);
  }
  assertGreater(across.length, 0, "every slot stayed in its worker");
}

Deno.test({
  ...denoTransportOnly(
    "--max-connections 1 --workers 2 serves one client at a time, and hands each freed slot to a waiting client whichever worker holds it",
    ENGINE_ACCEPTS_FIRST,
  ),
}, async () => {
  await servesExactly(1, 12);
});

Deno.test({
  ...denoTransportOnly(
    "--max-connections 3 --workers 2 serves exactly three clients at a time across the workers",
    ENGINE_ACCEPTS_FIRST,
  ),
}, async () => {
  await servesExactly(3, 10);
});

/**
 * The most connections the workers had open at once, from their "opened"
 * and "closed" lines. A slot goes from one worker to another only after the
 * first logged its connection closed, so at equal milliseconds closes count
 * first. (Summed snapshots cannot tell: two workers' counts, taken a moment
 * apart, can both include a slot that moved between them.)
 */
function mostOpenAtOnce(lines: string[]): number {
  const events: [number, number][] = [];
  for (const line of lines) {
    const m = /^\[w\d+\] (\S+) .*connection \d+ (opened|closed)/.exec(line);
    if (m) events.push([Date.parse(m[1]!), m[2] === "opened" ? 1 : -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, step] of events) most = Math.max(most, open += step);
  return most;
}

Deno.test("--max-connections 5 --workers 2 keeps its limit under churn, and every exchange completes", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--max-connections", "5", "--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  // 20 clients at a time, 10 exchanges each: the limit fills, slots are
  // reclaimed and leased again, over and over.
  const clients = Array.from({ length: 20 }, async (_, c) => {
    for (let i = 0; i < 10; i++) {
      const payload = randomBytes(200 + c, c * 10 + i + 1);
      assertEquals(await exchange(server.port, payload), asciiUpper(payload));
    }
  });
  await Promise.all(clients);
  const s = await until(admin, (s) => s.activeTotal === 0 && !s.stats.paused);
  assertEquals([s.stats.accepted, s.stats.closed.eof], [200, 200]);
  assertAccountedFor(s.stats);
  const closed = /\[w\d+\] .*connection \d+ closed/;
  await until(
    admin,
    () => server.lines.filter((l) => closed.test(l)).length === 200,
  );
  assertEquals(mostOpenAtOnce(server.lines), 5);
});

Deno.test("--max-connections-per-ip 1 --workers 2 refuses a second connection from one address, whichever worker gets it", async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--max-connections-per-ip", "1", "--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const held = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  assertEquals(await roundTrip(held, "held"), "HELD");
  for (let i = 0; i < 8; i++) {
    using conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    await conn.write(encoder.encode("x")).catch(() => 0);
    // Closed at once, unserved: an end of input or a reset, never "X".
    const got = await conn.read(new Uint8Array(1)).catch(() => null);
    assertEquals(got, null, `connection ${i} from the same address was served`);
  }
  // Another address is served all the same; nc binds it with -s.
  const other = await runClient(
    "nc",
    ["-N", "-s", "127.0.0.2", "127.0.0.1", String(server.port)],
    encoder.encode("other\n"),
  );
  assertEquals(decoder.decode(other.stdout), "OTHER\n");
  await finish(held);
  const s = await until(admin, (s) => s.activeTotal === 0);
  assertEquals([s.stats.refused, s.stats.accepted], [8, 10]);
  assertAccountedFor(s.stats);
  const metrics = parseMetrics((await get(admin, "/metrics")).body);
  assertEquals(sample(metrics, "upcase_connections_refused_total"), 8);
});

Deno.test("--max-connections-per-ip 1 --workers 2 counts the client a PROXY header names across the workers", async () => {
  await using supervised = await startSupervisor(2, {
    args: [
      "--proxy-protocol",
      "--max-connections-per-ip",
      "1",
      "--admin",
      "127.0.0.1:0",
    ],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const open = async (source: string) => {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    await conn.write(
      encoder.encode(`PROXY TCP4 ${source} 127.0.0.1 40000 80\r\nhi`),
    );
    return conn;
  };
  const held = await open("10.9.8.7");
  assertEquals(decoder.decode(await readExactly(held, 2)), "HI");
  for (let i = 0; i < 8; i++) {
    using conn = await open("10.9.8.7");
    const got = await conn.read(new Uint8Array(1)).catch(() => null);
    assertEquals(got, null, `connection ${i} for the same client was served`);
  }
  const other = await open("10.9.8.6");
  assertEquals(decoder.decode(await readExactly(other, 2)), "HI");
  await finish(other);
  await finish(held);
  const s = await until(admin, (s) => s.activeTotal === 0);
  assertEquals(s.stats.refused, 8);
  assertAccountedFor(s.stats);
});

Deno.test({
  ...denoTransportOnly(
    "--max-connections 1 --workers 2: a worker that crashes gives its slot back",
    ENGINE_ACCEPTS_FIRST,
  ),
}, async () => {
  await using supervised = await startSupervisor(2, {
    args: ["--max-connections", "1", "--admin", "127.0.0.1:0"],
  });
  const { server } = supervised;
  const admin = await supervisorAdminPort(server);
  const first = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.port,
  });
  assertEquals(await roundTrip(first, "first"), "FIRST");
  const crashed = await servedBy(server, localPort(first));
  const n = 12;
  const clients = await waitingClients(server.port, n);
  await until(
    admin,
    async (s) => s.stats.waiting + await backlog(server.port) === n,
  );
  Deno.kill(supervised.workerPids().get(crashed)!.at(-1)!, "SIGKILL");
  // The clients the other worker holds get the freed slot, one by one;
  // those of the crashed worker went with it.
  const next = await Promise.any(clients.replies);
  assertEquals(
    await servedBy(server, localPort(clients.conns[next]!)),
    3 - crashed,
  );
  for (const conn of clients.conns) conn.close();
  first.close();
});

Deno.test({
  ...needs(
    ["/usr/bin/chromium"],
    "--workers: the supervisor's status page shows the whole server's limit, connections and state",
  ),
  async fn() {
    await using supervised = await startSupervisor(2, {
      args: ["--max-connections", "1", "--admin", "127.0.0.1:0"],
    });
    const { server } = supervised;
    const admin = await supervisorAdminPort(server);
    const first = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    assertEquals(await roundTrip(first, "first"), "FIRST");
    const clients = await waitingClients(server.port, 3);
    await until(admin, (s) => s.stats.waiting > 0);
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${admin}/`);
      const wait = { timeout: 15_000 };
      await page.locator('#state[data-state="paused"]').waitFor(wait);
      assertEquals(await page.textContent("#listen-workers"), "2");
      assertEquals(await page.textContent("#listen-max"), "1");
      assertEquals(await page.textContent("#total-active"), "1");
      const waiting = (await status(admin)).stats.waiting;
      assertEquals(await page.textContent("#total-waiting"), String(waiting));
    } finally {
      await browser.close();
    }
    for (const conn of [first, ...clients.conns]) conn.close();
  },
});
