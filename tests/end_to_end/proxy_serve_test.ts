import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { CidrSet } from "../../src/proxy/cidr.ts";
import { serveOn } from "../_transport.ts";
import { serve } from "../../src/server/serve.ts";
import { withLogs } from "../_admin.ts";
import {
  asciiUpper,
  assertAccountedFor,
  needs,
  randomBytes,
  readExactly as readExactlyUnbounded,
  utf8,
} from "../_helpers.ts";

const decoder = new TextDecoder();

// The v2 signature, from HAProxy's doc/proxy-protocol.txt, section 2.2.
const SIGNATURE = [
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
];

function ipv4(text: string): number[] {
  return text.split(".").map(Number);
}

function ipv6(text: string): number[] {
  // Full form only, which is all these tests use.
  return text.split(":").flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function port16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

/**
 * A v2 header, written byte by byte as the spec lays it out, so that it
 * does not share code with the parser it tests. `tlvs` go after the
 * addresses and count in the length.
 */
function v2Header(
  header:
    | { command: "local" }
    | {
      command: "proxy";
      family: "tcp4" | "tcp6";
      source: [string, number];
      destination: [string, number];
      tlvs?: number[];
    },
): Uint8Array {
  if (header.command === "local") {
    return new Uint8Array([...SIGNATURE, 0x20, 0x00, 0, 0]);
  }
  const addr = header.family === "tcp4" ? ipv4 : ipv6;
  const body = [
    ...addr(header.source[0]),
    ...addr(header.destination[0]),
    ...port16(header.source[1]),
    ...port16(header.destination[1]),
    ...(header.tlvs ?? []),
  ];
  return new Uint8Array([
    ...SIGNATURE,
    0x21,
    header.family === "tcp4" ? 0x11 : 0x21,
    ...port16(body.length),
    ...body,
  ]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await conn.write(bytes.subarray(done));
  }
}

/**
 * Reads until the server closes, and returns what arrived. A reset counts
 * as a close: a server that closes with unread input sends one.
 */
function readToClose(conn: Deno.Conn): Promise<Uint8Array> {
  return bounded(readToCloseUnbounded(conn));
}

async function readToCloseUnbounded(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  try {
    for (let n; (n = await conn.read(buf)) !== null;) {
      chunks.push(buf.slice(0, n));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
  }
  return concat(...chunks);
}

/**
 * Rejects after `ms`, so that a server that lost the behaviour fails the
 * test instead of hanging it.
 */
async function bounded<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  return bounded(readExactlyUnbounded(conn, length));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

const quiet = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;

Deno.test("serve with proxyProtocol serves a v1 client whose data comes in the header's packet, under its real address", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({ ...quiet, proxyProtocol: true });
    const conn = await connect(server.addr.port);
    try {
      const data = randomBytes(3000, 7);
      // One write: the bytes after the header arrive in the header's read.
      await writeAll(
        conn,
        concat(utf8("PROXY TCP4 192.0.2.1 198.51.100.2 56324 7000\r\n"), data),
      );
      assertEquals(await readExactly(conn, data.length), asciiUpper(data));
      await bounded(logs.until(/opened from 192\.0\.2\.1:56324 via /));
      const opened = logs.records.map(logs.message).find((m) =>
        m.includes("opened from 192.0.2.1")
      );
      assertEquals(
        opened,
        `connection 1 opened from 192.0.2.1:56324 via 127.0.0.1:${conn.localAddr.port}`,
      );
      assertEquals(server.stats().active.map((c) => c.peer), [
        "192.0.2.1:56324",
      ]);
      await conn.closeWrite();
      assertEquals((await readToClose(conn)).length, 0);
    } finally {
      closeQuietly(conn);
    }
    await server.shutdown();
    await bounded(logs.until(/closed \(eof\): 3000 bytes in, 3000 bytes out/));
    const closed = logs.records.map(logs.message).find((m) =>
      m.includes("closed (eof)")
    );
    assertMatch(closed!, /peer 192\.0\.2\.1:56324$/);
    assertEquals(server.stats().closed.eof, 1);
  });
});

Deno.test("serve with proxyProtocol reads a v2 header split across writes, skipping its TLVs", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({ ...quiet, proxyProtocol: true });
    const conn = await connect(server.addr.port);
    try {
      const header = v2Header({
        command: "proxy",
        family: "tcp6",
        source: ["2001:0db8:0000:0000:0000:0000:0000:0007", 40000],
        destination: ["2001:0db8:0000:0000:0000:0000:0000:0001", 7000],
        // A NOOP TLV (type 0x04) of 5 bytes, and an ALPN one (0x01).
        tlvs: [0x04, 0, 5, 1, 2, 3, 4, 5, 0x01, 0, 2, 0x68, 0x32],
      });
      const data = utf8("split header, then data");
      const whole = concat(header, data);
      // The header arrives in pieces, the last with the data's start.
      const cuts = [1, 12, 15, 16, 30, header.length + 3, whole.length];
      let from = 0;
      let echoed = 0;
      for (const to of cuts) {
        await writeAll(conn, whole.subarray(from, to));
        from = to;
        // The echo must cover exactly the data sent so far.
        const due = Math.max(0, to - header.length);
        if (due > echoed) {
          assertEquals(
            await readExactly(conn, due - echoed),
            asciiUpper(data.subarray(echoed, due)),
          );
          echoed = due;
        }
      }
      await bounded(logs.until(/opened from \[2001:db8::7\]:40000 via /));
      await conn.closeWrite();
      assertEquals((await readToClose(conn)).length, 0);
    } finally {
      closeQuietly(conn);
    }
    await server.shutdown();
    assertEquals(server.stats().bytesIn, "split header, then data".length);
  });
});

Deno.test("serve with proxyProtocol serves a v2 IPv4 header and a LOCAL one, which keeps the connection's own address", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({ ...quiet, proxyProtocol: true });
    const proxied = await connect(server.addr.port);
    const local = await connect(server.addr.port);
    try {
      await writeAll(
        proxied,
        concat(
          v2Header({
            command: "proxy",
            family: "tcp4",
            source: ["203.0.113.9", 1234],
            destination: ["10.0.0.11", 7000],
          }),
          utf8("abc"),
        ),
      );
      assertEquals(decoder.decode(await readExactly(proxied, 3)), "ABC");
      await writeAll(local, concat(v2Header({ command: "local" }), utf8("x")));
      assertEquals(decoder.decode(await readExactly(local, 1)), "X");
      await bounded(
        logs.until(/opened from 203\.0\.113\.9:1234 via 127\.0\.0\.1:/),
      );
      await bounded(logs.until(
        new RegExp(`opened from 127\\.0\\.0\\.1:${local.localAddr.port}$`),
      ));
      assertEquals(
        server.stats().active.map((c) => c.peer).sort(),
        ["127.0.0.1:" + local.localAddr.port, "203.0.113.9:1234"].sort(),
      );
    } finally {
      closeQuietly(proxied);
      closeQuietly(local);
    }
    await server.shutdown();
  });
});

Deno.test("serve with proxyProtocol closes and counts a malformed header, a partial one and a late one", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({
      ...quiet,
      proxyProtocol: true,
      handshakeTimeout: 150,
    });
    const { port } = server.addr;

    // Not a header at all: a client that skipped the balancer.
    const direct = await connect(port);
    try {
      await writeAll(direct, utf8("hello, no header here\r\n"));
      assertEquals((await readToClose(direct)).length, 0);
    } finally {
      closeQuietly(direct);
    }

    // A v1 line with a bad port.
    const bad = await connect(port);
    try {
      await writeAll(bad, utf8("PROXY TCP4 192.0.2.1 192.0.2.2 99999 80\r\n"));
      assertEquals((await readToClose(bad)).length, 0);
    } finally {
      closeQuietly(bad);
    }

    // Half a v2 header, then the client's end.
    const partial = await connect(port);
    try {
      await writeAll(partial, new Uint8Array(SIGNATURE.slice(0, 8)));
      await partial.closeWrite();
      assertEquals((await readToClose(partial)).length, 0);
    } finally {
      closeQuietly(partial);
    }

    // Half a v1 header, then nothing: the deadline closes it.
    const slow = await connect(port);
    try {
      const started = performance.now();
      await writeAll(slow, utf8("PROXY TCP4 192.0.2.1 "));
      assertEquals((await readToClose(slow)).length, 0);
      const waited = performance.now() - started;
      assert(waited >= 140, `closed after ${waited} ms, before the deadline`);
    } finally {
      closeQuietly(slow);
    }

    await server.shutdown();
    const stats = server.stats();
    assertEquals(stats.proxyRejected, {
      untrusted: 0,
      invalid: 2,
      closed: 1,
      timeout: 1,
    });
    // Rejected connections are not counted as served ones.
    assertEquals(
      Object.values(stats.closed).reduce((a, b) => a + b),
      0,
    );
    assertEquals(stats.bytesIn, 0);
    const rejections = logs.records.map(logs.message).filter((m) =>
      m.includes("rejected")
    );
    assertEquals(rejections.length, 4);
    assertMatch(rejections[3]!, /rejected \(timeout\): no complete header/);
  });
});

Deno.test("serve with proxyProtocol closes a source outside proxyTrusted at once, header or not", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({
      ...quiet,
      proxyProtocol: true,
      proxyTrusted: CidrSet.parse("127.0.0.2/32"),
    });
    const conn = await connect(server.addr.port);
    try {
      await writeAll(
        conn,
        utf8("PROXY TCP4 192.0.2.1 192.0.2.2 4000 7000\r\nabc"),
      );
      // Nothing is echoed: the server closed it without reading.
      assertEquals((await readToClose(conn)).length, 0);
    } finally {
      closeQuietly(conn);
    }
    // Counted in the accept loop, before the close the client saw.
    assertEquals(server.stats().proxyRejected.untrusted, 1);
    // Accepted from the listener like every other connection.
    assertEquals(server.stats().accepted, 1);
    assertAccountedFor(server.stats());
    await server.shutdown();
    assert(
      logs.records.map(logs.message).some((m) =>
        /rejected 1 connections from sources not trusted .*latest from 127\.0\.0\.1:/
          .test(m)
      ),
    );
  });
});

// However the operator wrote the entry, IPv4 or IPv4-mapped IPv6, it is the
// same source.
for (
  const trusted of ["127.0.0.3/32", "::ffff:127.0.0.3", "::ffff:127.0.0.0/104"]
) {
  Deno.test(
    needs(
      ["/usr/bin/python3"],
      `serve with proxyProtocol trusts a source by its own address (a client bound to 127.0.0.3, trusted as ${trusted})`,
    ),
    async () => {
      await withLogs(async (logs) => {
        const server = await serveOn({
          ...quiet,
          proxyProtocol: true,
          proxyTrusted: CidrSet.parse(trusted),
        });
        // Deno cannot choose a client's source address; Python can.
        const script = `
import socket, sys
s = socket.socket()
s.settimeout(10)
s.bind(("127.0.0.3", 0))
s.connect(("127.0.0.1", ${server.addr.port}))
sys.stdout.write(str(s.getsockname()[1]) + "\\n")
s.sendall(b"PROXY TCP4 192.0.2.77 192.0.2.2 5555 7000\\r\\nfrom python")
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
`;
        const output = await new Deno.Command("/usr/bin/python3", {
          args: ["-c", script],
          stdin: "null",
        }).output();
        assertEquals(output.code, 0, decoder.decode(output.stderr));
        const [localPort, reply] = decoder.decode(output.stdout).split("\n");
        assertEquals(reply, "FROM PYTHON");
        await server.shutdown();
        assert(
          logs.records.map(logs.message).includes(
            `connection 1 opened from 192.0.2.77:5555 via 127.0.0.3:${localPort}`,
          ),
          logs.records.map(logs.message).join("\n"),
        );
        assertEquals(server.stats().proxyRejected.untrusted, 0);
      });
    },
  );
}

Deno.test("serve with proxyProtocol applies maxConnectionsPerIp to the real client's address", async () => {
  await withLogs(async (logs) => {
    const server = await serveOn({
      ...quiet,
      proxyProtocol: true,
      maxConnectionsPerIp: 1,
    });
    const { port } = server.addr;
    const open = async (realIp: string, realPort: number) => {
      const conn = await connect(port);
      await writeAll(
        conn,
        utf8(`PROXY TCP4 ${realIp} 192.0.2.200 ${realPort} 7000\r\nping`),
      );
      return conn;
    };
    // Two clients behind one balancer address, with different real ones.
    const a = await open("192.0.2.1", 1001);
    const b = await open("192.0.2.2", 1002);
    let c: Deno.Conn | undefined;
    let d: Deno.Conn | undefined;
    try {
      assertEquals(decoder.decode(await readExactly(a, 4)), "PING");
      assertEquals(decoder.decode(await readExactly(b, 4)), "PING");
      // A second one from a's real address is over the limit.
      c = await open("192.0.2.1", 1003);
      assertEquals((await readToClose(c)).length, 0);
      await bounded(logs.until(
        /refused 1 connections over the limit of 1 per address \(latest from 192\.0\.2\.1:1003\)/,
      ));
      // Once a closes, its address has room again.
      await a.closeWrite();
      await readToClose(a);
      await bounded(logs.until(/peer 192\.0\.2\.1:1001$/));
      d = await open("192.0.2.1", 1004);
      assertEquals(decoder.decode(await readExactly(d, 4)), "PING");
    } finally {
      for (const conn of [a, b, c, d]) if (conn) closeQuietly(conn);
    }
    await server.shutdown();
    assertEquals(server.stats().refused, 1);
    assertAccountedFor(server.stats());
  });
});

Deno.test("serve with proxyProtocol off echoes a PROXY line like any other data", async () => {
  const server = await serveOn(quiet);
  const conn = await connect(server.addr.port);
  try {
    const line = "PROXY TCP4 192.0.2.1 192.0.2.2 4000 7000\r\n";
    await writeAll(conn, utf8(line));
    assertEquals(
      decoder.decode(await readExactly(conn, line.length)),
      line.toUpperCase(),
    );
  } finally {
    closeQuietly(conn);
  }
  await server.shutdown();
});

Deno.test("serve refuses proxyProtocol on a TLS port", () => {
  assertThrows(
    () => serve({ ...quiet, proxyProtocol: true, cert: "x", key: "y" }),
    TypeError,
    "Cannot read PROXY headers on a TLS port",
  );
});
