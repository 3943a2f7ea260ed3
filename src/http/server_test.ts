/**
 * serveHttp on 127.0.0.1 port 0, driven by raw sockets that show the bytes
 * on the wire, and by real HTTP clients (curl, Python's urllib, fetch): the
 * answers, the refusals, the deadlines, the connection limit and shutdown.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { getLogger } from "@logtape/logtape";
import { type HttpServeOptions, serveHttp } from "./server.ts";
import { rawExchange, readToEnd, withLogs } from "../../tests/_admin.ts";
import { needs } from "../../tests/_helpers.ts";

const PYTHON = "/usr/bin/python3";
const log = getLogger(["upcase", "admin"]);

function start(
  options: Partial<HttpServeOptions> = {},
) {
  const seen: Request[] = [];
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    log,
    handler(request) {
      seen.push(request);
      const path = new URL(request.url).pathname;
      return new Response(`hello from ${path}`, {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    },
    ...options,
  });
  return { server, port: server.addr.port, seen };
}

/** The status line and the header fields, names lowercased. */
function headOf(raw: string): { status: string; fields: Map<string, string> } {
  const [top = "", ...lines] = raw.slice(0, raw.indexOf("\r\n\r\n")).split(
    "\r\n",
  );
  const fields = new Map(lines.map((l) => {
    const colon = l.indexOf(":");
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
  }));
  return { status: top, fields };
}

function bodyOf(raw: string): string {
  return raw.slice(raw.indexOf("\r\n\r\n") + 4);
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `${cmd} ${args.join(" ")}: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("serveHttp answers GET with the body and HEAD with its length only, each with Connection: close", async () => {
  const { server, port, seen } = start();
  await using _ = server;
  const get = await rawExchange(
    port,
    "GET /status.json?x=1 HTTP/1.1\r\nHost: admin.test:9\r\nUser-Agent: raw\r\n\r\n",
  );
  const { status, fields } = headOf(get);
  assertEquals(status, "HTTP/1.1 200 OK");
  assertEquals(fields.get("content-length"), String(bodyOf(get).length));
  assertEquals(fields.get("connection"), "close");
  assertEquals(fields.get("content-type"), "text/plain; charset=utf-8");
  assertMatch(
    fields.get("date") ?? "",
    /^\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT$/,
  );
  assertEquals(bodyOf(get), "hello from /status.json");
  assertEquals(seen[0]?.url, "http://admin.test:9/status.json?x=1");
  assertEquals(seen[0]?.headers.get("user-agent"), "raw");

  const head = await rawExchange(port, "HEAD /x HTTP/1.0\r\n\r\n");
  assertEquals(headOf(head).status, "HTTP/1.1 200 OK");
  assertEquals(
    headOf(head).fields.get("content-length"),
    String("hello from /x".length),
  );
  assertEquals(bodyOf(head), "", "no body after a HEAD");
  // Without a Host header the server names itself.
  assertEquals(seen[1]?.url, `http://127.0.0.1:${port}/x`);
});

Deno.test("serveHttp refuses bad heads with 400, 414, 431 and 505, and other methods with 405, without calling the handler", async () => {
  const { server, port, seen } = start();
  await using _ = server;
  const cases: [string, string][] = [
    ["GET /x HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"],
    ["hello\r\n\r\n", "HTTP/1.1 400 Bad Request"],
    ["GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400 Bad Request"],
    [`GET /${"a".repeat(9000)} HTTP/1.1\r\n\r\n`, "HTTP/1.1 414 URI Too Long"],
    [
      `GET / HTTP/1.1\r\nHost: a\r\n${"X-Pad: 0123456789\r\n".repeat(100)}\r\n`,
      "HTTP/1.1 431 Request Header Fields Too Large",
    ],
    [
      `GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(17_000)}\r\n\r\n`,
      "HTTP/1.1 431 Request Header Fields Too Large",
    ],
    ["GET / HTTP/3.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"],
    ["DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"],
    ["CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 Bad Request"],
  ];
  for (const [request, expected] of cases) {
    const answer = await rawExchange(port, request);
    assertEquals(headOf(answer).status, expected, request.slice(0, 60));
    assertEquals(headOf(answer).fields.get("connection"), "close");
  }
  const post = await rawExchange(port, "POST / HTTP/1.1\r\nHost: a\r\n\r\n");
  assertEquals(headOf(post).fields.get("allow"), "GET, HEAD");
  assertEquals(seen.length, 0);
});

Deno.test("serveHttp answers a POST whose body it never reads, intact, before it closes", async () => {
  // Closing with the body unread would reset the connection, and the reset
  // can destroy the answer before the client reads it.
  const { server, port } = start();
  await using _ = server;
  const body = "x".repeat(200_000);
  const answer = await rawExchange(
    port,
    `POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  assertEquals(headOf(answer).status, "HTTP/1.1 405 Method Not Allowed");
  assertEquals(bodyOf(answer), "405 Method Not Allowed: POST is not allowed\n");
});

Deno.test("serveHttp answers 408 to a head that stops after its first line, at headerTimeout", async () => {
  const { server, port } = start({ headerTimeout: 300 });
  await using _ = server;
  const started = performance.now();
  const answer = await rawExchange(port, "GET /healthz HTTP/1.1\r\n");
  const elapsed = performance.now() - started;
  assertEquals(headOf(answer).status, "HTTP/1.1 408 Request Timeout");
  assertStringIncludes(
    bodyOf(answer),
    "no complete request head within 300 ms",
  );
  assert(elapsed >= 290, `answered after ${elapsed} ms, before the deadline`);
});

Deno.test("serveHttp closes a connection that sends nothing at headerTimeout, without an answer", async () => {
  const { server, port } = start({ headerTimeout: 200 });
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  assertEquals(await readToEnd(conn), "");
});

Deno.test("serveHttp closes at requestTimeout a connection whose handler never answers", async () => {
  const release = Promise.withResolvers<Response>();
  const { server, port } = start({
    requestTimeout: 300,
    handler: () => release.promise,
  });
  await using _ = server;
  const answer = await rawExchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  assertEquals(answer, "");
  release.resolve(new Response("late"));
});

Deno.test("serveHttp answers 500 when the handler throws, and logs the error", async () => {
  await withLogs(async (logs) => {
    const { server, port } = start({
      handler: () => {
        throw new Error("broken handler");
      },
    });
    await using _ = server;
    const answer = await rawExchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assertEquals(headOf(answer).status, "HTTP/1.1 500 Internal Server Error");
    assertEquals(
      logs.records.map(logs.message),
      ["admin request failed: broken handler"],
    );
  });
});

Deno.test("serveHttp shutdown closes waiting connections at once and lets an answer being made finish", async () => {
  const handling = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const { server, port } = start({
    headerTimeout: 60_000,
    requestTimeout: 60_000,
    async handler() {
      handling.resolve();
      await release.promise;
      return new Response("finished");
    },
  });
  using idle = await Deno.connect({ hostname: "127.0.0.1", port });
  await idle.write(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
  const busy = rawExchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await handling.promise;
  const stopped = server.shutdown();
  // The half-sent request is dropped without waiting for its deadline.
  assertEquals(await readToEnd(idle), "");
  release.resolve();
  assertEquals(bodyOf(await busy), "finished");
  await stopped;
  await server.finished;
});

Deno.test("serveHttp stops when its signal aborts", async () => {
  const controller = new AbortController();
  const { server, port } = start({ signal: controller.signal });
  assertEquals(
    headOf(await rawExchange(port, "GET / HTTP/1.0\r\n\r\n")).status,
    "HTTP/1.1 200 OK",
  );
  controller.abort();
  await server.finished;
  let refused = false;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
  } catch (err) {
    refused = err instanceof Deno.errors.ConnectionRefused;
  }
  assert(refused, "the port is closed");
});

Deno.test("serveHttp serves fetch again and again: each answer closes its connection", async () => {
  // fetch keeps connections for reuse; it must notice that these close.
  const { server, port } = start();
  await using _ = server;
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/n${i}`);
    assertEquals(await res.text(), `hello from /n${i}`);
  }
});

Deno.test({
  ...needs(
    ["curl", PYTHON],
    "serveHttp serves curl (GET, HEAD, HTTP/1.0) and Python's urllib",
  ),
  async fn() {
    const { server, port } = start();
    await using _ = server;
    const url = `http://127.0.0.1:${port}/metrics`;
    assertEquals(
      await run("curl", ["-sS", "--fail", "--max-time", "10", url]),
      "hello from /metrics",
    );
    const head = await run("curl", ["-sS", "--max-time", "10", "-I", url]);
    assertMatch(head, /^HTTP\/1\.1 200 OK\r\n/);
    assertMatch(head, /\r\ncontent-length: 19\r\n/);
    assertEquals(
      await run("curl", ["-sS", "--fail", "--max-time", "10", "-0", url]),
      "hello from /metrics",
    );
    const python = await run(PYTHON, [
      "-c",
      "import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=10); print(r.status, r.read().decode())",
      url,
    ]);
    assertEquals(python, "200 hello from /metrics\n");
  },
});
