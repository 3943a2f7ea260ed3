import { assert, assertEquals, assertRejects } from "@std/assert";
import { serveOn } from "../_transport.ts";
import {
  asciiUpper,
  exchange,
  randomBytes,
  readAll,
  utf8,
} from "../_helpers.ts";

async function start(
  options: { unicode?: boolean; drainTimeout?: number } = {},
) {
  return await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...options,
  });
}

Deno.test("serve echoes a line uppercased", async () => {
  await using server = await start();
  const out = await exchange(server.addr.port, utf8("hello, world\n"));
  assertEquals(new TextDecoder().decode(out), "HELLO, WORLD\n");
});

Deno.test("serve returns all 256 byte values byte-exact", async () => {
  await using server = await start();
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assertEquals(await exchange(server.addr.port, all), asciiUpper(all));
});

Deno.test("serve streams 10 MiB byte-exact", async () => {
  await using server = await start();
  const data = randomBytes(10 * 1024 * 1024, 42);
  const out = await exchange(server.addr.port, data.slice(), {
    chunkSize: 100_003,
  });
  assertEquals(out.length, data.length);
  assertEquals(out, asciiUpper(data));
});

Deno.test("serve handles 1000 concurrent clients, each verified", async () => {
  await using server = await start();
  const clients = Array.from({ length: 1000 }, async (_, i) => {
    const data = randomBytes(1000 + (i % 97), i + 1);
    const out = await exchange(server.addr.port, data.slice(), {
      chunkSize: 300,
    });
    assertEquals(out, asciiUpper(data), `client ${i}`);
  });
  await Promise.all(clients);
});

Deno.test("serve finishes echoing after the client half-closes, then closes", async () => {
  await using server = await start();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  await conn.write(utf8("abc"));
  await conn.closeWrite();
  // The read side ends only because the server closed: EOF after "ABC".
  assertEquals(new TextDecoder().decode(await readAll(conn.readable)), "ABC");
});

Deno.test("serve in unicode mode uppercases text split across writes", async () => {
  await using server = await start({ unicode: true });
  const out = await exchange(server.addr.port, utf8("straße ǆ café"), {
    chunkSize: 5,
  });
  assertEquals(new TextDecoder().decode(out), "STRASSE Ǆ CAFÉ");
});

Deno.test("serve keeps other clients whole while others vanish mid-stream", async () => {
  await using server = await start();
  const port = server.addr.port;
  // Steady clients stream while the faulty one dies in the middle.
  const steady = Array.from({ length: 20 }, async (_, i) => {
    const data = randomBytes(256 * 1024, 100 + i);
    assertEquals(
      await exchange(port, data.slice(), { chunkSize: 4096 }),
      asciiUpper(data),
    );
  });
  for (let round = 0; round < 10; round++) {
    const faulty = await Deno.connect({ hostname: "127.0.0.1", port });
    await faulty.write(randomBytes(100_000, round));
    const reader = faulty.readable.getReader();
    await reader.read(); // the server is mid-stream with this client
    reader.releaseLock();
    // Gone with data unread both ways; real RSTs (SO_LINGER 0, from Python)
    // are in reliability_resets_test.ts.
    faulty.close();
  }
  await Promise.all(steady);
  // The server still accepts and serves.
  assertEquals(
    new TextDecoder().decode(await exchange(port, utf8("still up"))),
    "STILL UP",
  );
});

Deno.test("serve shutdown drains open connections, then stops accepting", async () => {
  const server = await start();
  const port = server.addr.port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = conn.readable.getReader();
  const echo = async (text: string) => {
    await conn.write(utf8(text));
    let got = "";
    while (got.length < text.length) {
      const r = await reader.read();
      if (r.done) break;
      got += new TextDecoder().decode(r.value);
    }
    return got;
  };
  assertEquals(await echo("before"), "BEFORE");
  const finished = server.shutdown();
  // New clients are refused, while the open one is still served.
  await assertRejects(() => Deno.connect({ hostname: "127.0.0.1", port }));
  assertEquals(await echo("during"), "DURING");
  await conn.write(utf8("last"));
  await conn.closeWrite();
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    rest += new TextDecoder().decode(r.value);
  }
  assertEquals(rest, "LAST");
  assertEquals(await finished, { drained: 1, cut: 0 });
  assertEquals(await server.finished, { drained: 1, cut: 0 });
});

Deno.test("serve shutdown cuts connections left at the drain timeout", async () => {
  const server = await start({ drainTimeout: 50 });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  await conn.write(utf8("x"));
  const reader = conn.readable.getReader();
  await reader.read();
  assertEquals(server.activeConnections, 1);
  assertEquals(await server.shutdown(), { drained: 0, cut: 1 });
  assertEquals(server.activeConnections, 0);
  // The client sees the connection end.
  const end = await reader.read().catch(() => ({ done: true }));
  assert(end.done);
});

Deno.test("serve shuts down when its signal aborts", async () => {
  const controller = new AbortController();
  const server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen() {},
  });
  controller.abort();
  assertEquals(await server.finished, { drained: 0, cut: 0 });
  await assertRejects(() =>
    Deno.connect({ hostname: "127.0.0.1", port: server.addr.port })
  );
});

Deno.test("serve reports its address and calls onListen with it", async () => {
  let seen: Deno.NetAddr | undefined;
  await using server = await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => seen = a,
  });
  assertEquals(seen, server.addr);
  assert(server.addr.port > 0);
});

Deno.test("serve throws AddrInUse for a port that is taken", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  let error: unknown;
  try {
    await serveOn({ hostname: "127.0.0.1", port, onListen() {} });
  } catch (err) {
    error = err;
  }
  assert(error instanceof Deno.errors.AddrInUse);
});

Deno.test("serve listens and serves on IPv6 loopback", async () => {
  await using server = await serveOn({
    hostname: "::1",
    port: 0,
    onListen() {},
  });
  assertEquals(server.addr.hostname, "::1");
  const out = await exchange(server.addr.port, utf8("over v6"), {
    hostname: "::1",
  });
  assertEquals(new TextDecoder().decode(out), "OVER V6");
});
