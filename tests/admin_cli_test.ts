import { assertEquals, assertMatch } from "@std/assert";
import { runCli, ServerProcess } from "./_helpers.ts";

async function adminPort(server: ServerProcess): Promise<number> {
  const line = await server.waitForLine(/admin listening on /);
  return Number(/admin listening on 127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
}

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
    /^upcase_build_info\{version="[^"]+",deno="[^"]+"\} 1$/m,
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
