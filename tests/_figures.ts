/**
 * Scale and figures for the reliability tests. CI runs them scaled down;
 * `deno task reliability` runs them at full size with UPCASE_SCALE=full and
 * collects what each one records into docs/reliability.md.
 *
 * @module
 */

/** True when the tests run at the full size that docs/reliability.md reports. */
export const FULL = Deno.env.get("UPCASE_SCALE") === "full";

/**
 * Picks the CI size or the full size of a load.
 *
 * @param ci The size for `deno task test`.
 * @param full The size for the documented run.
 */
export function scale(ci: number, full: number): number {
  return FULL ? full : ci;
}

/** One row of the reliability table. */
export interface Figure {
  /** The test, as the table names it. */
  test: string;
  /** The load it held. */
  load: string;
  /** The faults it injected. */
  faults: string;
  /** What happened. */
  result: string;
  /** Bytes sent whose uppercase never came back. */
  bytesLost: number;
}

/**
 * Records a row for docs/reliability.md when UPCASE_FIGURES names a file;
 * otherwise does nothing.
 */
export async function recordFigure(figure: Figure): Promise<void> {
  const path = Deno.env.get("UPCASE_FIGURES");
  if (!path) return;
  await Deno.writeTextFile(path, JSON.stringify(figure) + "\n", {
    append: true,
  });
}

// Deno asks for --allow-all to read /proc, so these ask ls and ps instead.

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  const out = new Deno.Command("sh", {
    args: ["-c", 'ls "/proc/$0/fd" | wc -l', String(pid)],
  }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Resident memory of a process in KiB. */
export function rssKiB(pid: number): number {
  const out = new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
  }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}
