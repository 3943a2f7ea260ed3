import { assert, assertEquals, assertRejects } from "@std/assert";
import { asciiUpper, randomBytes, ServerProcess, utf8 } from "./_helpers.ts";

async function readExactly(
  conn: Deno.Conn,
  length: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error(`EOF after ${got} of ${length} bytes`);
    got += n;
  }
  return buf;
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} drains in-flight data, refuses new clients, and exits 0`, async () => {
    await using server = await ServerProcess.start([]);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    await conn.write(utf8("first"));
    assertEquals(new TextDecoder().decode(await readExactly(conn, 5)), "FIRST");
    server.child.kill(signal);
    await server.waitForLine(/shutting down/);
    await assertRejects(() =>
      Deno.connect({ hostname: "127.0.0.1", port: server.port })
    );
    // The rest of the payload goes out after the signal and all comes back.
    const rest = randomBytes(1024 * 1024, 3);
    const reply = new Response(conn.readable).arrayBuffer();
    let written = 0;
    while (written < rest.length) {
      written += await conn.write(rest.subarray(written));
    }
    await conn.closeWrite();
    assertEquals(new Uint8Array(await reply), asciiUpper(rest));
    const status = await server.exit();
    assertEquals(status.code, 0);
    assert(server.lines.some((l) => l.includes(`received ${signal}`)));
    assert(
      server.lines.some((l) =>
        l.includes("shutdown complete: 1 drained, 0 cut")
      ),
    );
  });
}

Deno.test("a second signal exits at once, without waiting for the drain", async () => {
  await using server = await ServerProcess.start(["--drain-timeout", "600"]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(utf8("x"));
  assertEquals(await readExactly(conn, 1), utf8("X"));
  server.child.kill("SIGTERM");
  await server.waitForLine(/shutting down: .* draining 1 connections/);
  server.child.kill("SIGTERM");
  const status = await server.exit();
  assertEquals(status.code, 128 + 15);
  assert(
    server.lines.some((l) => l.includes("received SIGTERM again; exiting now")),
  );
  // The process is gone, so the client's connection ends.
  assertEquals(await conn.read(new Uint8Array(1)).catch(() => null), null);
  conn.close();
});
