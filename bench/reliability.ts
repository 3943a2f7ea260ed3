/**
 * Regenerates docs/reliability.md: `deno task reliability [--soak SECONDS]`.
 *
 * It runs every tests/reliability/*_test.ts at full size (UPCASE_SCALE=full,
 * with UPCASE_REQUIRE_TOOLS=1 so that nothing is skipped), collects the row
 * each test records through UPCASE_FIGURES, then runs the soak (600 s by
 * default; `--soak 0` leaves it out), and writes the table with the machine
 * and the date. If a test or the soak fails, it exits with code 1 and leaves
 * docs/reliability.md as it was. Nobody edits the table by hand.
 *
 * @module
 */
import { parseArgs } from "@std/cli";

const ROOT = new URL("../", import.meta.url).pathname;
const DOC = "docs/reliability.md";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** One row of the table, as tests/_figures.ts records it. */
interface Figure {
  test: string;
  load: string;
  faults: string;
  result: string;
  bytesLost: number;
}

function say(line: string): void {
  let bytes = encoder.encode(line + "\n");
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
}

function output(command: string, args: string[]): string {
  const out = new Deno.Command(command, { args, stderr: "null" }).outputSync();
  return decoder.decode(out.stdout).trim();
}

/** The reliability test files, which others may add to: a glob, in order. */
function reliabilityTests(): string[] {
  return [...Deno.readDirSync(`${ROOT}tests/reliability`)]
    .map((entry) => entry.name)
    .filter((name) => /_test\.ts$/.test(name))
    .sort()
    .map((name) => `tests/reliability/${name}`);
}

// Deno asks for --allow-all to read /proc, so grep reads it.
function machine(): string {
  const memKiB = Number(
    /(\d+)/.exec(output("grep", ["MemTotal", "/proc/meminfo"]))?.[1],
  );
  const cpu = output("grep", ["-m1", "model name", "/proc/cpuinfo"])
    .replace(/^[^:]*:\s*/, "");
  return [
    `${output("nproc", [])} CPUs${cpu ? ` (${cpu})` : ""}`,
    `${(memKiB / 2 ** 20).toFixed(1)} GiB of memory`,
    `Linux ${output("uname", ["-r"])}`,
    `fd limit ${output("sh", ["-c", "ulimit -n"])}`,
  ].join(", ");
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function table(rows: Figure[]): string[] {
  return [
    "| test | load held | faults injected | result | bytes lost |",
    "| --- | --- | --- | --- | ---: |",
    ...rows.map((r) =>
      `| ${cell(r.test)} | ${cell(r.load)} | ${cell(r.faults)} | ${
        cell(r.result)
      } | ${r.bytesLost} |`
    ),
  ];
}

async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["soak"],
    boolean: ["help"],
    default: { soak: "600" },
  });
  if (flags.help) {
    say(
      "Usage: deno task reliability [--soak SECONDS]\n\n" +
        "Reruns tests/reliability/*_test.ts at full size, then the soak for SECONDS\n" +
        `(default 600; 0 leaves it out), and rewrites ${DOC}.`,
    );
    return 0;
  }
  const soakS = Number(flags.soak);
  if (!(soakS === 0 || soakS >= 5)) {
    say(
      `reliability: Cannot parse --soak: "${flags.soak}" is not 0 or a number of seconds (5 or more)`,
    );
    return 2;
  }

  // Read first, so that a problem here does not waste a long run.
  const host = machine();
  const figures = await Deno.makeTempFile({ prefix: "upcase-figures-" });
  try {
    const files = reliabilityTests();
    const command = ["deno", "test", "--allow-all", ...files];
    say(`reliability: ${command.join(" ")}  (UPCASE_SCALE=full)`);
    const started = performance.now();
    const test = await new Deno.Command(Deno.execPath(), {
      args: command.slice(1),
      cwd: ROOT,
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
      say(`reliability: the tests failed; ${DOC} is left as it was`);
      return 1;
    }

    if (soakS > 0) {
      say(`reliability: running the soak for ${soakS} s`);
      const soak = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          "--allow-run",
          "--allow-read",
          `--allow-write=${figures}`,
          "bench/soak.ts",
          "--duration",
          String(soakS),
          "--figures",
          figures,
        ],
        cwd: ROOT,
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (soak.code !== 0) {
        say(`reliability: the soak failed; ${DOC} is left as it was`);
        return 1;
      }
    }
    const minutes = Math.ceil((performance.now() - started) / 60_000);

    const rows: Figure[] = (await Deno.readTextFile(figures))
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line));
    if (rows.length === 0) {
      say("reliability: the tests passed but recorded no figures");
      return 1;
    }
    const now = new Date().toISOString();
    const doc = [
      "# Reliability figures",
      "",
      "Each row is one test from `tests/reliability/*_test.ts`, run at full size" +
      (soakS > 0 ? `, or the ${soakS} s soak (\`bench/soak.ts\`)` : "") +
      ". Every client checks every byte that comes back; bytes lost counts the",
      "bytes sent whose uppercase never came back. `deno task test` runs the same",
      "tests scaled down.",
      "",
      `- Date: ${now.slice(0, 10)} ${now.slice(11, 16)} UTC`,
      `- Machine: ${host}`,
      `- Deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
      `- Regenerate: \`deno task reliability${
        soakS === 600 ? "" : ` --soak ${soakS}`
      }\`, which runs \`UPCASE_SCALE=full deno test --allow-all ` +
      `tests/reliability/*_test.ts\` (${files.length} files)` +
      (soakS > 0 ? ` and \`deno task soak --duration ${soakS}\`` : "") +
      `; it took about ${minutes} min here. Do not edit this file by hand.`,
      "",
      ...table(rows),
      "",
    ].join("\n");
    await Deno.writeTextFile(`${ROOT}${DOC}`, doc);
    // So that `deno fmt --check` passes on the file as written.
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", DOC],
      cwd: ROOT,
      stdin: "null",
    }).output();
    say(`reliability: wrote ${DOC} with ${rows.length} rows`);
    return 0;
  } finally {
    await Deno.remove(figures);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
