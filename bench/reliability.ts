/**
 * Regenerates docs/reliability.md: `deno task reliability [--soak SECONDS]`.
 * It runs every tests/reliability_*_test.ts at full size (UPCASE_SCALE=full),
 * collects the row each test records, runs the soak (600 s by default), and
 * writes the table with the machine and the date. Nobody edits the table by
 * hand.
 *
 * @module
 */
import { parseArgs } from "@std/cli";

const args = parseArgs(Deno.args, {
  string: ["soak"],
  default: { soak: "600" },
});
const root = new URL("../", import.meta.url).pathname;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

function output(command: string, args: string[]): string {
  return decoder.decode(new Deno.Command(command, { args }).outputSync().stdout)
    .trim();
}

interface Figure {
  test: string;
  load: string;
  faults: string;
  result: string;
  bytesLost: number;
}

const figures = await Deno.makeTempFile({ prefix: "upcase-figures-" });
const files = [...Deno.readDirSync(`${root}tests`)]
  .map((e) => e.name)
  .filter((n) => /^reliability_.*_test\.ts$/.test(n))
  .sort()
  .map((n) => `${root}tests/${n}`);
say(`running ${files.length} reliability test files at full size`);
const started = performance.now();
const test = await new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", ...files],
  cwd: root,
  env: {
    UPCASE_SCALE: "full",
    UPCASE_FIGURES: figures,
    UPCASE_REQUIRE_TOOLS: "1",
  },
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (test.code !== 0) {
  say("the reliability tests failed; docs/reliability.md is left as it was");
  Deno.exit(1);
}
const testMinutes = (performance.now() - started) / 60_000;

say(`running the soak for ${args.soak} s`);
const soak = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-run",
    "--allow-read",
    `${root}bench/soak.ts`,
    "--duration",
    args.soak,
  ],
  stdin: "null",
  stderr: "inherit",
}).output();
const soakText = decoder.decode(soak.stdout);
if (soak.code !== 0) {
  say(soakText);
  say("the soak failed; docs/reliability.md is left as it was");
  Deno.exit(1);
}
const line = (pattern: RegExp) =>
  soakText.split("\n").find((l) => pattern.test(l)) ?? "";

const rows: Figure[] = (await Deno.readTextFile(figures)).trim().split("\n")
  .map((l) => JSON.parse(l));
await Deno.remove(figures);
rows.push({
  test: "soak",
  load:
    `${args.soak} s of mixed load: churn, 1 MiB streams, mid-stream resets, idle clients`,
  faults: "resets and idle clients throughout",
  result: [line(/^connections:/), line(/^peak RSS/), line(/^open fds:/)].join(
    "; ",
  ),
  bytesLost: 0,
});

const cell = (text: string) => text.replaceAll("|", "\\|");
// Deno asks for --allow-all to read /proc, so grep reads it.
const memKiB = Number(
  /MemTotal:\s+(\d+)/.exec(output("grep", ["MemTotal", "/proc/meminfo"]))?.[1],
);
const doc = [
  "# Reliability figures",
  "",
  "Each row is one test from `tests/reliability_*_test.ts` run at full size, plus",
  "the soak. Every client checks every byte it gets back. CI runs the same tests",
  "scaled down on every change.",
  "",
  "Regenerate this file with `deno task reliability` (about " +
  `${
    Math.ceil(testMinutes + Number(args.soak) / 60)
  } minutes here); do not edit it by hand.`,
  "",
  `- Date: ${new Date().toISOString().slice(0, 10)}`,
  `- Machine: ${navigator.hardwareConcurrency} cores, ${
    (memKiB / 2 ** 20).toFixed(0)
  } GiB, ` +
  `Linux ${output("uname", ["-r"])}`,
  `- Deno: ${Deno.version.deno}`,
  "",
  "| test | load held | faults injected | result | bytes lost |",
  "| --- | --- | --- | --- | ---: |",
  ...rows.map((r) =>
    `| ${cell(r.test)} | ${cell(r.load)} | ${cell(r.faults)} | ${
      cell(r.result)
    } | ${r.bytesLost} |`
  ),
  "",
].join("\n");
await Deno.writeTextFile(`${root}docs/reliability.md`, doc);
// deno fmt aligns the table, so that the file passes `deno task check`.
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "-q", `${root}docs/reliability.md`],
})
  .output();
say(`wrote docs/reliability.md with ${rows.length} rows`);
