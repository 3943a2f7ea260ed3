/**
 * The peer servers the benchmark compares upcase against: the code a user
 * would typically write for the same job in other stacks. Each takes a port
 * (0 picks a free one), prints `listening PORT` once, and runs until killed.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const PEERS_DIR = `${ROOT}bench/peers/`;

/** How to build and start one peer server. */
export interface Peer {
  /** Short name for the command line and reports. */
  name: string;
  /** One-line description for report tables. */
  label: string;
  /** Executables the peer needs on PATH (or absolute paths). */
  tools: string[];
  /** A compile step whose `cmd(output)` writes the program to `output`. */
  build?: { cmd(output: string): string[]; cwd: string };
  /** The command line; `built` is the `build` output, for peers that have one. */
  command(port: number, built?: string): string[];
  /** Extra environment variables for the peer process. */
  env?: Record<string, string>;
}

const PYTHON = "/usr/bin/python3";

function denoPeer(file: string): (port: number) => string[] {
  return (port) => [
    Deno.execPath(),
    "run",
    "--allow-net",
    `${PEERS_DIR}${file}`,
    String(port),
  ];
}

function goPeer(bufSize: number): Peer {
  return {
    name: bufSize >= 1024 ? `go-${bufSize / 1024}k` : `go-${bufSize}`,
    label: `Go, goroutine per connection, ${bufSize}-byte buffer`,
    tools: ["go"],
    build: {
      cmd: (output) => ["go", "build", "-o", output, "."],
      cwd: `${PEERS_DIR}go_server`,
    },
    command(port, built) {
      if (built === undefined) {
        throw new TypeError("Cannot start a Go peer: it has not been built");
      }
      return [built, "-port", String(port), "-buf", String(bufSize)];
    },
    // The harness compares one core against one core.
    env: { GOMAXPROCS: "1" },
  };
}

/**
 * The compiler flags for the C peer: plain `-O3`, which vectorises its
 * uppercase loop with SSE2 on any x86-64 (and NEON on arm64);
 * `-march=native` would tie the figures to this machine's CPU.
 */
export const C_FLAGS = ["-O3", "-Wall", "-Wextra"];

/** Every peer, in report order. */
export const PEERS: Peer[] = [
  {
    name: "gevent",
    label: "Python gevent StreamServer",
    tools: [PYTHON],
    command: (port) => [PYTHON, `${PEERS_DIR}gevent_server.py`, String(port)],
  },
  {
    name: "node-data",
    label: "Node net, 'data' handler",
    tools: ["node"],
    command: (port) => ["node", `${PEERS_DIR}node_data.mjs`, String(port)],
  },
  {
    name: "node-transform",
    label: "Node net, stream.Transform pipeline",
    tools: ["node"],
    command: (port) => ["node", `${PEERS_DIR}node_transform.mjs`, String(port)],
  },
  goPeer(64 * 1024),
  goPeer(4 * 1024),
  {
    name: "deno-raw",
    label: "Deno.listen, read/write loop, 64 KiB buffer",
    tools: [],
    command: denoPeer("deno_raw.ts"),
  },
  {
    name: "deno-raw-512",
    label: "the same loop with a 512-byte buffer",
    tools: [],
    command: (port) => [...denoPeer("deno_raw.ts")(port), "512"],
  },
  {
    name: "deno-streams",
    label: "Deno.listen, readable.pipeThrough(TransformStream)",
    tools: [],
    command: denoPeer("deno_streams.ts"),
  },
  {
    name: "c-epoll",
    label: "C, one thread, edge-triggered epoll, 64 KiB buffer",
    tools: ["gcc"],
    build: {
      cmd: (output) => ["gcc", ...C_FLAGS, "-o", output, "c_epoll.c"],
      cwd: PEERS_DIR,
    },
    command(port, built) {
      if (built === undefined) {
        throw new TypeError("Cannot start the C peer: it has not been built");
      }
      return [built, String(port)];
    },
  },
  {
    name: "deno-node-net",
    label: "node:net 'data' handler under Deno",
    tools: [],
    command: denoPeer("deno_node_net.ts"),
  },
];
