/**
 * The benchmark's memory table: what a connection costs the server in each
 * state a client can leave it in, in ASCII and `--unicode` mode, measured as
 * an operator sees it. Each cell is a fresh server: its resident memory
 * (RSS, from `ps`) just before the connections open, then once the Go load
 * generator holds them all in the state; the difference per connection is
 * the figure. Kernel socket buffers are not in RSS.
 *
 * @module
 */
import {
  HOLD_MODES,
  type HoldMode,
  type HoldText,
  openIdle,
} from "./loadgen_go.ts";

/** A server process started for one cell. */
export interface MemoryServer extends AsyncDisposable {
  /** Where it listens, as `host:port`. */
  readonly addr: string;
  /** Its resident memory now, in KiB. */
  rssKiB(): number;
}

/** How the server runs, and what the clients send it. */
export interface ServerMode {
  /** The column's name. */
  mode: "ascii" | "unicode";
  /** Extra command-line arguments for the server. */
  args: string[];
  /** What the clients send: in `--unicode`, the text whose reply grows most. */
  text: HoldText;
}

/** The table's columns. */
export const SERVER_MODES: readonly ServerMode[] = [
  { mode: "ascii", args: [], text: "ascii" },
  { mode: "unicode", args: ["--unicode"], text: "iota" },
];

/** One cell of the table. */
export interface MemoryCell {
  /** The state the connections were held in. */
  state: HoldMode;
  /** The server's mode. */
  mode: ServerMode["mode"];
  /** Connections held. */
  conns: number;
  /** RSS above the RSS just before the connections opened, per connection, in KB (1000 bytes). */
  kbPerConn: number;
  /** Bytes each connection sent to get into the state, on average. */
  bytesSentPerConn: number;
}

/** Options for {@linkcode measureMemoryStates}. */
export interface MemoryStatesOptions {
  /** The Go load generator's binary. */
  loadgen: string;
  /** Connections per state. */
  conns: Record<HoldMode, number>;
  /** Starts a fresh server with extra arguments. */
  start(args: string[]): Promise<MemoryServer>;
  /** The core to pin the load generator to. */
  cpu?: number;
  /** Called when a cell is done. */
  log?(line: string): void;
}

// Seconds to bring every connection into its state, and again to finish
// them: a --unicode server turns 256 KiB of U+0390 into 768 KiB for each of
// thousands of connections.
const HOLD_TIMEOUT_S = 300;

/**
 * Measures every state in every mode.
 *
 * @param options The load generator, the sizes and how to start a server.
 * @returns The cells, and a note for each cell that failed.
 */
export async function measureMemoryStates(
  options: MemoryStatesOptions,
): Promise<{ cells: MemoryCell[]; notes: string[] }> {
  const cells: MemoryCell[] = [];
  const notes: string[] = [];
  for (const state of HOLD_MODES) {
    for (const mode of SERVER_MODES) {
      try {
        cells.push(await measureCell(options, { state, mode }));
      } catch (err) {
        notes.push(`memory ${state}, ${mode.mode}: ${(err as Error).message}`);
      }
      options.log?.(`memory ${state} ${mode.mode} done`);
    }
  }
  return { cells, notes };
}

async function measureCell(
  options: MemoryStatesOptions,
  cell: { state: HoldMode; mode: ServerMode },
): Promise<MemoryCell> {
  const { state, mode } = cell;
  const conns = options.conns[state];
  await using server = await options.start(mode.args);
  const before = server.rssKiB();
  await using held = await openIdle(options.loadgen, {
    addr: server.addr,
    conns,
    mode: state,
    text: mode.text,
    timeout: HOLD_TIMEOUT_S,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
  });
  if (held.ready.errors > 0 || held.ready.connected !== conns) {
    throw new Error(
      `${
        conns - held.ready.connected
      } of ${conns} connections failed to get into the state`,
    );
  }
  const during = server.rssKiB();
  const done = await held.finish();
  if (done.errors > 0 || done.secondExchangeOk !== conns) {
    throw new Error(`${done.errors} errors: ${done.firstError}`);
  }
  return {
    state,
    mode: mode.mode,
    conns,
    kbPerConn: (during - before) * 1024 / 1000 / conns,
    bytesSentPerConn: held.ready.bytesSentPerConn,
  };
}
