/**
 * Admission as an operator sees it: who counts as one client for
 * `--max-connections-per-ip` (each 127.N.x.y source, ::1, an IPv6 /64),
 * that a server full at `--max-connections` stays ready, names who fills
 * it, and logs the limit once per episode however fast clients churn.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { serveAdmin } from "../../src/admin/server.ts";
import type { ServeOptions } from "../../src/server/serve.ts";
import { serveOn } from "../_transport.ts";
import {
  finish,
  get,
  parseMetrics,
  roundTrip,
  sample,
  within,
  withLogs,
} from "../_admin.ts";
import { needs, ROOT } from "../_helpers.ts";

const PYTHON = "/usr/bin/python3";
const decoder = new TextDecoder();

// Opens `count` connections from `source` to `target`, one after another,
// and prints "served" or "refused" for each (an echo back, or the server's
// close); holds them all until its standard input ends.
const HOLDER = `
import socket, sys
source, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
held = []
for i in range(count):
    s = socket.socket(family)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect((host, port))
    try:
        s.sendall(b"x")
        answer = s.recv(1)
    except OSError:
        answer = b""
    print("served" if answer == b"X" else "refused", flush=True)
    held.append(s)
sys.stdin.read()
`;

/** A Python process holding connections from one source address. */
class Holder implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(
    source: string,
    target: { host: string; port: number },
    count: number,
    prefix: string[] = [],
  ) {
    const [cmd, ...args] = [...prefix, PYTHON, "-c", HOLDER];
    this.#child = new Deno.Command(cmd!, {
      args: [...args, source, target.host, String(target.port), String(count)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** The answers for the first `count` connections, in order. */
  async answers(count: number): Promise<string[]> {
    for (;;) {
      const lines = this.#buffer.split("\n").filter((l) => l !== "");
      if (lines.length >= count) return lines.slice(0, count);
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`holder ended after: ${this.#buffer}`);
      this.#buffer += value;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    await this.#lines.cancel();
    await this.#child.status;
  }
}

async function startWithAdmin(options: ServeOptions) {
  const server = await serveOn({ port: 0, onListen() {}, ...options });
  const admin = serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    server,
    onListen() {},
  });
  return {
    server,
    port: server.addr.port,
    adminPort: admin.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await admin.shutdown();
    },
  };
}

Deno.test({
  ...needs(
    [PYTHON],
    "admission counts each 127.N.x.y source and ::1 as its own client, and stays ready when full",
  ),
  async fn() {
    await withLogs(async (logs) => {
      // "::" takes IPv4 clients too, as IPv4-mapped addresses.
      await using t = await startWithAdmin({
        hostname: "::",
        maxConnections: 6,
        maxConnectionsPerIp: 3,
      });
      const target = { host: "127.0.0.1", port: t.port };
      await using busy = new Holder("127.0.0.9", target, 4);
      assertEquals(await busy.answers(4), [
        "served",
        "served",
        "served",
        "refused",
      ]);
      await using other = new Holder("127.1.2.3", target, 2);
      assertEquals(await other.answers(2), ["served", "served"]);
      await using v6 = new Holder("::1", { host: "::1", port: t.port }, 1);
      assertEquals(await v6.answers(1), ["served"]);
      // Six open: full. The warning names who fills the slots.
      await within(
        logs.until(/connection limit of 6 reached/),
        10_000,
        "warning",
      );
      const warning = logs.records.map(logs.message).find((m) =>
        m.includes("connection limit of 6 reached")
      )!;
      assertMatch(warning, /most connections: 127\.0\.0\.9 with 3 of 6/);
      // Still ready: one client filling the slots must not take the server
      // out of rotation. The pause shows on /metrics instead.
      const ready = await get(t.adminPort, "/readyz");
      assertEquals([ready.status, ready.body], [200, "ready"]);
      const metrics = parseMetrics((await get(t.adminPort, "/metrics")).body);
      assertEquals(sample(metrics, "upcase_accepting_paused"), 1);
      assertEquals(sample(metrics, "upcase_connections_refused_total"), 1);
    });
  },
});

Deno.test("admission logs the limit once per episode, however fast clients churn", async () => {
  await withLogs(async (logs) => {
    await using t = await startWithAdmin({
      hostname: "127.0.0.1",
      maxConnections: 5,
    });
    let readyAnswers = 0;
    let notReady = 0;
    // Ten clients against five slots, 2,000 connections in all.
    const churn = Promise.all(Array.from({ length: 10 }, async (_, i) => {
      for (let k = 0; k < 200; k++) {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: t.port,
        });
        assertEquals(await roundTrip(conn, `c${i}`), `C${i}`);
        await finish(conn);
        if (k % 50 === 0) {
          const { status } = await get(t.adminPort, "/readyz");
          readyAnswers++;
          if (status !== 200) notReady++;
        }
      }
    }));
    await within(churn, 60_000, "churn done");
    await within(
      logs.until(/accepting freely again/),
      30_000,
      "the end of the episode logged",
    );
    const lines = logs.records.map(logs.message);
    const reached = lines.filter((m) => m.includes("limit of 5 reached"));
    const freed = lines.filter((m) => m.includes("accepting freely again"));
    assertEquals(reached.length, 1, reached.join("\n"));
    assertEquals(freed.length, 1);
    const pauses = Number(/reaching it (\d+) times/.exec(freed[0]!)?.[1]);
    assert(pauses > 1, freed[0]);
    assertEquals([readyAnswers, notReady], [40, 0]);
  });
});

Deno.test({
  ...needs(
    ["ip", PYTHON],
    "admission counts an IPv6 /64 as one client, and --ipv6-prefix changes it (hosts in a network namespace)",
  ),
  async fn() {
    const ns = `upcase-admit-${Deno.pid}`;
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(args[0]!, { args: args.slice(1) })
        .output();
      assertEquals(out.code, 0, decoder.decode(out.stderr));
    };
    await run("ip", "netns", "add", ns);
    try {
      const inNs = ["ip", "netns", "exec", ns];
      await run(...inNs, "ip", "link", "set", "lo", "up");
      // Two hosts in one /64 and one in the next; nodad: usable at once.
      for (const addr of ["fd00:1::1", "fd00:1::2", "fd00:2::1"]) {
        await run(
          ...inNs,
          "ip",
          "-6",
          "addr",
          "add",
          `${addr}/64`,
          "dev",
          "lo",
          "nodad",
        );
      }
      for (const [prefix, expected] of [["64", "refused"], ["128", "served"]]) {
        const child = new Deno.Command(inNs[0]!, {
          args: [
            ...inNs.slice(1),
            Deno.execPath(),
            "run",
            "--allow-net",
            `${ROOT}main.ts`,
            "--host",
            "::",
            "--port",
            "0",
            "--max-connections-per-ip",
            "1",
            "--ipv6-prefix",
            prefix!,
          ],
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const stderr = child.stderr.pipeThrough(new TextDecoderStream())
          .getReader();
        try {
          let log = "";
          while (!/listening on \S+:(\d+)/.test(log)) {
            const { value, done } = await stderr.read();
            if (done) throw new Error(log);
            log += value;
          }
          const port = Number(/listening on \S+:(\d+)/.exec(log)![1]);
          const target = { host: "fd00:1::1", port };
          await using first = new Holder("fd00:1::1", target, 1, inNs);
          assertEquals(await first.answers(1), ["served"]);
          await using sameNet = new Holder("fd00:1::2", target, 1, inNs);
          assertEquals(await sameNet.answers(1), [expected], `/${prefix}`);
          await using nextNet = new Holder("fd00:2::1", target, 1, inNs);
          assertEquals(await nextNet.answers(1), ["served"]);
        } finally {
          child.kill("SIGKILL");
          await stderr.cancel();
          await child.status;
        }
      }
    } finally {
      await run("ip", "netns", "del", ns);
    }
  },
});
