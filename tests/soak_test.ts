import { assertEquals, assertMatch } from "@std/assert";
import { ROOT } from "./_helpers.ts";

// A 15 s run has not reached the heap's working size, so its memory bound is
// looser than the 5% of the documented 10-minute run (docs/reliability.md).
Deno.test("deno task soak runs a short mixed load and passes its own checks", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-run",
      "--allow-read",
      `${ROOT}bench/soak.ts`,
      "--duration",
      "15",
    ],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
  assertMatch(text, /connections: [1-9]\d* ok, 0 failed/);
  assertMatch(text, /open fds: (\d+) at the start, \1 at the end/);
  assertMatch(text, /soak: passed/);
});
