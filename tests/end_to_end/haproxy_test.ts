/**
 * upcase behind a real HAProxy (Debian's `haproxy`), started by the tests
 * on loopback in front of two upcase processes, with `send-proxy-v2` and
 * health checks on each instance's `/readyz`, as deploy/haproxy.cfg has it.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import {
  asciiUpper,
  needs,
  randomBytes,
  readExactly,
  ROOT,
  ServerProcess,
  utf8,
} from "../_helpers.ts";

const decoder = new TextDecoder();

/** Rejects after `ms`, naming what did not happen, so no step hangs the suite. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not done within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago, for HAProxy's frontend. */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

async function startUpcase(): Promise<
  { server: ServerProcess; admin: number }
> {
  const server = await ServerProcess.start([
    "--proxy-protocol",
    "--admin",
    "127.0.0.1:0",
    "--drain-timeout",
    "30",
  ]);
  const line = await server.waitForLine(/admin listening on /);
  const admin = Number(/admin listening on 127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
  return { server, admin };
}

/** HAProxy in the foreground, with its output kept as lines. */
class HaproxyProcess implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;
  #waiters: { pattern: RegExp; resolve: () => void }[] = [];

  constructor(configPath: string) {
    this.#child = new Deno.Command("haproxy", {
      args: ["-db", "-f", configPath],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#done = Promise.all([
      this.#collect(this.#child.stdout),
      this.#collect(this.#child.stderr),
    ]).then(() => {});
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      for (let nl; (nl = buffered.indexOf("\n")) >= 0;) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) =>
          !w.pattern.test(line) || void w.resolve()
        );
      }
    }
  }

  /** Resolves at the first line, past or future, that matches. */
  waitForLine(pattern: RegExp): Promise<void> {
    if (this.lines.some((l) => pattern.test(l))) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ pattern, resolve }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#done;
  }
}

/** deploy/haproxy.cfg's shape, on loopback, with quick checks for a test. */
function haproxyConfig(
  frontend: number,
  servers: { port: number; admin: number }[],
): string {
  return `global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
    timeout client-fin 10s
    timeout server-fin 10s
    retries 3
    option redispatch 1
frontend upcase
    bind 127.0.0.1:${frontend}
    default_backend upcase
backend upcase
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host upcase
    http-check expect status 200
    option log-health-checks
    default-server send-proxy-v2 inter 100ms fall 1 rise 1
${
    servers.map((s, i) =>
      `    server s${i + 1} 127.0.0.1:${s.port} check port ${s.admin}\n`
    ).join("")
  }`;
}

/** Two upcase instances behind HAProxy, all up and checked healthy. */
async function startStack(dir: string) {
  const one = await startUpcase();
  const two = await startUpcase();
  const frontend = freePort();
  const config = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(
    config,
    haproxyConfig(frontend, [
      { port: one.server.port, admin: one.admin },
      { port: two.server.port, admin: two.admin },
    ]),
  );
  const haproxy = new HaproxyProcess(config);
  // The checks run once the frontend is bound.
  await within(
    10_000,
    "HAProxy's first checks",
    Promise.all([
      haproxy.waitForLine(/Health check for server upcase\/s1 succeeded/),
      haproxy.waitForLine(/Health check for server upcase\/s2 succeeded/),
    ]),
  );
  return { one, two, haproxy, frontend };
}

/**
 * Which instance serves an open client, found by its own port among the
 * real addresses each one's /status.json lists. The server knows its peer
 * before it echoes a byte, so once a client has its echo this is settled,
 * unlike the log lines, which travel through a pipe of their own.
 */
async function landedOn(
  admins: number[],
  clientPort: number,
): Promise<number | undefined> {
  const peer = `127.0.0.1:${clientPort}`;
  for (const [i, admin] of admins.entries()) {
    const res = await fetch(`http://127.0.0.1:${admin}/status.json`);
    const body = await res.json() as { stats: { active: { peer: string }[] } };
    if (body.stats.active.some((c) => c.peer === peer)) return i;
  }
  return undefined;
}

Deno.test(
  needs(["haproxy"], "upcase behind HAProxy logs the real client's address"),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "upcase-haproxy-" });
    try {
      const { one, two, haproxy, frontend } = await startStack(dir);
      await using _one = one.server;
      await using _two = two.server;
      await using _haproxy = haproxy;
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: frontend,
      });
      try {
        await conn.write(utf8("through haproxy"));
        assertEquals(
          decoder.decode(await within(10_000, "echo", readExactly(conn, 15))),
          "THROUGH HAPROXY",
        );
        const clientPort = conn.localAddr.port;
        const opened = new RegExp(
          `opened from 127\\.0\\.0\\.1:${clientPort} via 127\\.0\\.0\\.1:(\\d+)`,
        );
        const i = await landedOn([one.admin, two.admin], clientPort);
        if (i === undefined) {
          throw new Error("No instance lists the client's real address");
        }
        const line = await [one.server, two.server][i]!.waitForLine(
          opened,
          10_000,
        );
        // The address HAProxy connected from is another socket, another port.
        assert(Number(opened.exec(line)?.[1]) !== clientPort, line);
      } finally {
        conn.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

const CLIENTS = 8;
const STREAM_BYTES = 5 * 1024 * 1024;
const BEFORE_DRAIN = 1024 * 1024;
const CHUNK = 64 * 1024;

interface StreamClient {
  /** The client's own port, which upcase logs as the real address. */
  port: number;
  /** Resolves once the first BEFORE_DRAIN bytes came back. */
  halfway: Promise<void>;
  /** Bytes echoed correctly, once the server has closed. */
  done: Promise<number>;
}

/**
 * A client that streams STREAM_BYTES through HAProxy while it reads and
 * checks the echo. It sends BEFORE_DRAIN bytes, then waits for `resume`
 * before the rest, so that the drain happens mid-stream.
 */
async function streamClient(
  port: number,
  seed: number,
  resume: Promise<void>,
): Promise<StreamClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const data = randomBytes(STREAM_BYTES, seed);
  const expected = asciiUpper(data);
  const halfway = Promise.withResolvers<void>();
  const reading = (async () => {
    const buf = new Uint8Array(CHUNK);
    let got = 0;
    // Every read returns at least one byte, so this ends by STREAM_BYTES.
    for (let n; (n = await conn.read(buf)) !== null;) {
      for (let i = 0; i < n; i++) {
        if (buf[i] !== expected[got + i]) {
          throw new Error(`seed ${seed}: byte ${got + i} differs`);
        }
      }
      got += n;
      if (got >= BEFORE_DRAIN) halfway.resolve();
    }
    return got;
  })();
  const writing = (async () => {
    for (let at = 0; at < STREAM_BYTES;) {
      if (at === BEFORE_DRAIN) await resume;
      const end = Math.min(at + CHUNK, STREAM_BYTES);
      at += await conn.write(data.subarray(at, end));
    }
    await conn.closeWrite();
  })();
  const done = Promise.all([reading, writing]).then(([got]) => got).finally(
    () => conn.close(),
  );
  // A failed client must not leave an unhandled rejection behind.
  done.catch(() => {});
  halfway.promise.catch(() => {});
  return { port: conn.localAddr.port, halfway: halfway.promise, done };
}

Deno.test(
  needs(
    ["haproxy"],
    "upcase behind HAProxy: draining one instance while clients stream loses no byte",
  ),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "upcase-haproxy-" });
    try {
      const { one, two, haproxy, frontend } = await startStack(dir);
      await using _one = one.server;
      await using _two = two.server;
      await using _haproxy = haproxy;
      const admins = [one.admin, two.admin];
      const resume = Promise.withResolvers<void>();
      const clients: StreamClient[] = [];
      try {
        for (let i = 0; i < CLIENTS; i++) {
          clients.push(await streamClient(frontend, i + 1, resume.promise));
        }
        await within(
          30_000,
          "every client's first megabyte",
          Promise.all(clients.map((c) => c.halfway)),
        );
        const where = await Promise.all(
          clients.map((c) => landedOn(admins, c.port)),
        );
        const onOne = clients.filter((_, i) => where[i] === 0);
        const onTwo = clients.filter((_, i) => where[i] === 1);
        // Round robin: both instances hold streams, so the drain matters.
        assertEquals(onOne.length + onTwo.length, CLIENTS);
        assert(onOne.length > 0 && onTwo.length > 0, `${onOne.length} on one`);

        one.server.child.kill("SIGTERM");
        await within(
          10_000,
          "instance 1's drain",
          one.server.waitForLine(/shutting down/),
        );
        const ready = await fetch(`http://127.0.0.1:${one.admin}/readyz`);
        assertEquals([ready.status, await ready.text()], [503, "draining"]);
        await within(
          10_000,
          "HAProxy marking instance 1 down",
          haproxy.waitForLine(/Server upcase\/s1 is DOWN/),
        );

        // New clients now all land on instance 2, and are served.
        for (let i = 0; i < 6; i++) {
          const conn = await Deno.connect({
            hostname: "127.0.0.1",
            port: frontend,
          });
          try {
            await conn.write(utf8(`new ${i}`));
            assertEquals(
              decoder.decode(
                await within(
                  10_000,
                  "a new client's echo",
                  readExactly(conn, 5),
                ),
              ),
              `NEW ${i}`,
            );
            assertEquals(await landedOn(admins, conn.localAddr.port), 1);
          } finally {
            conn.close();
          }
        }

        // The streams on instance 1 go on through its drain.
        resume.resolve();
        const received = await within(
          60_000,
          "the streams",
          Promise.all(clients.map((c) => c.done)),
        );
        assertEquals(received, clients.map(() => STREAM_BYTES));
        const status = await within(
          30_000,
          "instance 1's exit",
          one.server.exit(),
        );
        assertEquals(status.code, 0);
        assert(
          one.server.lines.some((l) =>
            l.includes(`shutdown complete: ${onOne.length} drained, 0 cut`)
          ),
          one.server.lines.join("\n"),
        );
      } finally {
        resume.resolve();
        await Promise.allSettled(clients.map((c) => c.done));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  needs(["haproxy"], "deploy/haproxy.cfg is a valid HAProxy configuration"),
  async () => {
    const output = await new Deno.Command("haproxy", {
      args: ["-c", "-f", `${ROOT}deploy/haproxy.cfg`],
      stdin: "null",
    }).output();
    assertEquals(
      output.code,
      0,
      decoder.decode(output.stdout) + decoder.decode(output.stderr),
    );
  },
);
