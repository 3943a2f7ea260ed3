import { assertEquals } from "@std/assert";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import { SERVE_DEFAULTS, serverSettings } from "../server/options.ts";
import { needs } from "../../tests/_helpers.ts";
import { within } from "../../tests/_admin.ts";

const PYTHON = "/usr/bin/python3";

// A worker that speaks the pipe protocol and nothing more: it reports
// ready, notes each message but the pings in its file, and exits 0 on a
// stop unless told to ignore it.
const FAKE_WORKER = `
import sys
path, ignore_stop = sys.argv[1], sys.argv[2] == "ignore-stop"
print("upcase-worker ready", flush=True)
for line in sys.stdin:
    if line.startswith("ping"):
        continue
    with open(path, "a") as notes:
        notes.write(line)
    if line.startswith("stop") and not ignore_stop:
        sys.exit(0)
`;

function fakeWorkers(
  dir: string,
  behaviour: "obey" | "ignore-stop",
): SupervisorOptions {
  return {
    workers: 2,
    // The supervisor never listens on it; only the workers would.
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    workerArgs: [],
    workerCommand: (id) => ({
      command: PYTHON,
      args: ["-c", FAKE_WORKER, `${dir}/worker${id}`, behaviour],
    }),
    settings: serverSettings(SERVE_DEFAULTS),
  };
}

async function notes(dir: string, id: number): Promise<string[]> {
  const text = await Deno.readTextFile(`${dir}/worker${id}`);
  return text.split("\n").filter((line) => line !== "");
}

async function inTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "upcase-supervisor-" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  needs(
    [PYTHON],
    "Supervisor passes stop and reload from its caller to every worker once, and returns 0",
  ),
  () =>
    inTempDir(async (dir) => {
      const supervisor = new Supervisor(fakeWorkers(dir, "obey"));
      const finished = supervisor.run();
      assertEquals(supervisor.running, 2);
      supervisor.reload();
      supervisor.stop("SIGTERM");
      // A second stop, as a signal to the whole group brings, is not passed on.
      supervisor.stop("SIGTERM");
      assertEquals(await within(finished, 10_000, "workers stopped"), 0);
      for (const id of [1, 2]) {
        assertEquals(await notes(dir, id), ["reload", "stop SIGTERM"]);
      }
    }),
);

Deno.test(
  needs(
    [PYTHON],
    "Supervisor.kill ends workers that do not drain, and run reports them",
  ),
  () =>
    inTempDir(async (dir) => {
      const supervisor = new Supervisor(fakeWorkers(dir, "ignore-stop"));
      const finished = supervisor.run();
      supervisor.stop("SIGINT");
      supervisor.kill();
      // Killed mid-drain, the workers did not exit cleanly.
      assertEquals(await within(finished, 10_000, "workers killed"), 1);
      assertEquals(supervisor.running, 0);
    }),
);

Deno.test("Supervisor stopped before it runs starts no worker", async () => {
  const supervisor = new Supervisor({
    ...fakeWorkers("/nonexistent", "obey"),
    workerCommand: () => {
      throw new Error("No worker should start");
    },
  });
  supervisor.stop("SIGTERM");
  assertEquals(await supervisor.run(), 0);
});
