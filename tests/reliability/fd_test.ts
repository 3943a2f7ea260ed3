import { denoTransportOnly, EMFILE_SILENT } from "../_transport.ts";
import { assert, assertEquals } from "@std/assert";
import { verifiedExchange } from "../../bench/loadgen.ts";
import { recordFigure, scale } from "../_figures.ts";
import { randomBytes, ROOT, ServerProcess } from "../_helpers.ts";

const FD_LIMIT = 128;
const CLIENTS = scale(300, 1000);

Deno.test({
  ...denoTransportOnly(
    "server survives running out of file descriptors and serves again once they free up",
    EMFILE_SILENT,
  ),
}, async () => {
  // `ulimit -n` applies to the server process only; the test keeps its own.
  await using server = await ServerProcess.start([], {
    command: [
      "sh",
      "-c",
      `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`,
      Deno.execPath(),
      "run",
      "--allow-net",
      `${ROOT}main.ts`,
    ],
  });
  const { port } = server;

  // Each client connects and keeps its connection open, so that the server
  // runs out of descriptors; those it cannot accept wait in the backlog.
  const connects = Array.from(
    { length: CLIENTS },
    () => Deno.connect({ hostname: "127.0.0.1", port }),
  );
  await server.waitForLine(/accept failed: .*Too many open files/);

  // The server is still up and logged the condition once, not per accept.
  const status = Promise.race([
    server.child.status,
    Promise.resolve("running"),
  ]);
  assertEquals(await status, "running");

  // Free the descriptors: close every client, including those whose connect
  // completes only now that the server accepts again.
  let closed = 0;
  await Promise.all(connects.map(async (pending) => {
    try {
      (await pending).close();
      closed++;
    } catch {
      // A connect that failed holds nothing.
    }
  }));
  await server.waitForLine(/accepting again after \d+ failed accepts/);

  // New clients are served, byte-exact.
  const exchanges = 20;
  for (let i = 0; i < exchanges; i++) {
    await verifiedExchange("127.0.0.1", port, randomBytes(4096, i + 1), 1024);
  }

  const warnings = server.lines.filter((l) =>
    /accept failed: .*Too many open files/.test(l)
  );
  const resumes = server.lines.filter((l) =>
    /accepting again after \d+ failed accepts/.test(l)
  );
  const failedAccepts = resumes.reduce(
    (s, l) => s + Number(/after (\d+)/.exec(l)![1]),
    0,
  );
  // One warning per episode (and each episode ends in one resume line).
  assert(
    warnings.length >= 1 && warnings.length <= resumes.length + 1,
    server.lines.join("\n"),
  );
  assert(
    failedAccepts >= warnings.length,
    "the failures were counted, not each logged",
  );

  await recordFigure({
    test: "file-descriptor exhaustion",
    load:
      `${CLIENTS} clients holding connections to a server limited to ${FD_LIMIT} fds`,
    faults: "accept fails with EMFILE until clients close",
    result:
      `server stayed up; ${warnings.length} warning(s) for ${failedAccepts} failed accepts ` +
      `(backoff 5 ms to 1 s); ${closed} clients closed; ${exchanges} new clients then served byte-exact`,
    bytesLost: 0,
  });
});
