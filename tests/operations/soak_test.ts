import { assertEquals, assertMatch, assertNotMatch } from "@std/assert";
import { needs, ROOT } from "../_helpers.ts";

/** `deno task soak` as deno.json gives it, split into words. */
async function soakTask(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const task = config.tasks?.soak;
  if (typeof task !== "string") throw new Error("deno.json has no soak task");
  return task.split(/\s+/);
}

Deno.test({
  ...needs(
    ["/usr/bin/python3"],
    "deno task soak runs a short mixed load and passes its own checks",
  ),
  async fn() {
    // Run as the task runs it, with the task's permissions.
    const [deno, ...args] = await soakTask();
    assertEquals(deno, "deno");
    // A fresh server's heap takes about 6 s of this load to reach its
    // working size (45 -> 175 MiB here), so a 15 s run warms up for 9 s
    // instead of the default fifth before memory is compared.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--duration", "15", "--warmup", "9"],
      cwd: ROOT,
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assertMatch(text, /^connections: [1-9]\d* ok, 0 failed$/m);
    // Every kind of client ran, and the server saw each reset as a reset.
    assertMatch(
      text,
      /mid-stream resets the server saw \| ([1-9]\d*) of \1 \|/,
    );
    assertMatch(
      text,
      /server closed connections: [1-9]\d* eof, [1-9]\d* reset, [1-9]\d* idle/,
    );
    assertNotMatch(text, /\| FAIL \|/);
    assertMatch(text, /^soak: passed$/m);
  },
});
