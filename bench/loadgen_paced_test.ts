import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
} from "@std/assert";
import { buildLoadgen, runGoLoad } from "./loadgen_go.ts";
import { needs, ServerProcess } from "../tests/_helpers.ts";

Deno.test({
  ...needs(
    ["go"],
    "runGoLoad paces ping-pong with a pause and reports its window as it runs",
  ),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "upcase-loadgen-" });
    try {
      const binary = await buildLoadgen(dir);
      await using server = await ServerProcess.start([]);
      const addr = `127.0.0.1:${server.port}`;

      await t.step(
        "a 50 ms pause bounds each connection's messages",
        async () => {
          const edges: string[] = [];
          const r = await runGoLoad(binary, {
            addr,
            mode: "pingpong",
            conns: 10,
            duration: 1,
            warmup: 0.3,
            pause: 0.05,
            onWindow: (edge) => edges.push(edge),
          });
          assertEquals(r.errors, 0, r.firstError);
          assertEquals(r.pauseMs, 50);
          assertEquals(edges, ["start", "end"]);
          // One message per 50 ms at most, plus one started at the window's
          // edge: unpaced, each connection would send thousands.
          assert(r.maxConnMsgs <= 21, JSON.stringify(r));
          assertGreater(r.minConnMsgs, 0);
          assertEquals(r.starvedConnWindows, 0);
        },
      );

      await t.step("a pause outside ping-pong is refused", async () => {
        await assertRejects(
          () =>
            runGoLoad(binary, {
              addr,
              mode: "bulk",
              conns: 1,
              duration: 1,
              warmup: 0,
              pause: 0.01,
            }),
          Error,
          '-pause is for -mode pingpong only, not "bulk"',
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
