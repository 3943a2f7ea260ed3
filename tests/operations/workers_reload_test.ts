/**
 * With TLS and `--workers`, SIGHUP reloads every worker's certificate
 * once, whether it reaches the supervisor alone (systemd's
 * `ExecReload=kill -HUP $MAINPID`) or the whole process group.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { needs, readExactly, utf8 } from "../_helpers.ts";
import { makeCert, tempDir, type TestCert } from "../_tls.ts";
import { startSupervisor } from "../_workers.ts";

const count = (lines: string[], pattern: RegExp) =>
  lines.filter((l) => pattern.test(l)).length;

// Connections that trust only `cert`, enough to reach both workers.
async function allTrust(port: number, cert: TestCert): Promise<void> {
  await Promise.all(Array.from({ length: 10 }, async () => {
    using conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [cert.cert],
    });
    await conn.write(utf8("hi"));
    assertEquals(await readExactly(conn, 2), utf8("HI"));
  }));
}

Deno.test({
  ...needs(
    ["openssl", "setsid"],
    "--workers with TLS: SIGHUP to the process group or to the supervisor reloads each worker once",
  ),
  async fn() {
    await using dir = await tempDir();
    const first = await makeCert(dir.path, "upcase-test-1");
    const second = await makeCert(dir.path, "upcase-test-2");
    const certFile = `${dir.path}/live.crt.pem`;
    const keyFile = `${dir.path}/live.key.pem`;
    const install = async (cert: TestCert) => {
      await Deno.writeTextFile(certFile, cert.cert);
      await Deno.writeTextFile(keyFile, cert.key);
    };
    await install(first);
    await using supervised = await startSupervisor(2, {
      args: ["--tls-cert", certFile, "--tls-key", keyFile],
      group: true,
    });
    const { server, pgid } = supervised;

    await install(second);
    Deno.kill(-pgid, "SIGHUP");
    for (const id of [1, 2]) {
      // The signal reached the worker itself too, which left the reload to
      // the supervisor.
      await server.waitForLine(
        new RegExp(`^\\[w${id}\\] .*received SIGHUP; ignored`),
        10_000,
      );
      await server.waitForLine(
        new RegExp(
          `^\\[w${id}\\] .*reloaded the TLS certificate \\(CN=upcase-test-2`,
        ),
      );
    }
    await allTrust(server.port, second);

    await install(first);
    server.child.kill("SIGHUP");
    for (const id of [1, 2]) {
      await server.waitForLine(
        new RegExp(
          `^\\[w${id}\\] .*reloaded the TLS certificate \\(CN=upcase-test-1`,
        ),
      );
    }
    await allTrust(server.port, first);

    server.child.kill("SIGTERM");
    assertEquals((await server.exit()).code, 0, server.lines.join("\n"));
    const { lines } = server;
    assertEquals(count(lines, /asking 2 workers to reload/), 2);
    for (const id of [1, 2]) {
      const reloaded = new RegExp(`^\\[w${id}\\] .*reloaded the TLS`);
      assertEquals(count(lines, reloaded), 2, lines.join("\n"));
    }
  },
});
