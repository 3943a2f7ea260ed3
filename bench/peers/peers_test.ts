import { assert, assertEquals } from "@std/assert";
import { buildLoadgen, openIdle } from "../loadgen_go.ts";
import { type Peer, PEERS } from "./peers.ts";
import {
  asciiUpper,
  exchange,
  needs,
  randomBytes,
} from "../../tests/_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A peer server running as a child process. */
class PeerProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly #stdout: Promise<string>;
  readonly #stderr: Promise<string>;
  readonly #watchdog: ReturnType<typeof setTimeout>;

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    streams: {
      stdout: Promise<string>;
      stderr: Promise<string>;
      watchdog: ReturnType<typeof setTimeout>;
    },
  ) {
    this.child = child;
    this.port = port;
    this.#stdout = streams.stdout;
    this.#stderr = streams.stderr;
    this.#watchdog = streams.watchdog;
  }

  /** Spawns the peer on port 0 and waits for its `listening PORT` line. */
  static async start(peer: Peer, built?: string): Promise<PeerProcess> {
    const [cmd, ...args] = peer.command(0, built);
    const child = new Deno.Command(cmd!, {
      args,
      env: peer.env ?? {},
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // A peer that hangs (never listens, never closes a connection) is killed,
    // which ends its stdout and its sockets, so the test fails instead.
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const rest = (async () => {
      let more = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        more += r.value;
      }
      return more;
    })();
    const nl = text.indexOf("\n");
    const match = /^listening (\d+)$/.exec(text.slice(0, nl));
    const server = new PeerProcess(child, Number(match?.[1]), {
      stdout: rest.then((more) => text.slice(nl + 1) + more),
      stderr,
      watchdog,
    });
    if (nl < 0 || match === null) {
      await server[Symbol.asyncDispose]();
      throw new Error(
        `${peer.name} did not print "listening PORT": ${
          JSON.stringify(text)
        }\n${await stderr}`,
      );
    }
    return server;
  }

  /**
   * Sends SIGTERM and returns how the process ended with what it printed
   * after the listening line.
   */
  async stop(): Promise<
    { status: Deno.CommandStatus; stdout: string; stderr: string }
  > {
    clearTimeout(this.#watchdog);
    try {
      this.child.kill("SIGTERM");
    } catch {
      // It already exited; the status says how.
    }
    const status = await this.child.status;
    return { status, stdout: await this.#stdout, stderr: await this.#stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearTimeout(this.#watchdog);
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.child.status;
    await this.#stdout;
    await this.#stderr;
  }
}

async function build(peer: Peer, dir: string): Promise<string | undefined> {
  if (peer.build === undefined) return undefined;
  const output = `${dir}/${peer.name}`;
  const [cmd, ...args] = peer.build.cmd(output);
  const result = await new Deno.Command(cmd!, {
    args,
    cwd: peer.build.cwd,
    stdin: "null",
  }).output();
  assert(
    result.success,
    `Building ${peer.name} failed:\n${decoder.decode(result.stderr)}`,
  );
  return output;
}

/** Edge-case bytes, then 200 KiB that is half lowercase letters, half noise. */
function payload(seed: number): Uint8Array {
  const head = new Uint8Array([
    ...encoder.encode("hello World 123 azAZ`{@[ "),
    0x00,
    0xff,
    0xe1, // lowercase letters + 0x80 must stay as they are
    0xfa,
  ]);
  const body = randomBytes(200 * 1024, seed).map((b) =>
    b & 1 ? 0x61 + ((b >> 1) % 26) : b
  );
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** Compares byte for byte, reporting the first difference instead of a diff. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  assert(
    i === actual.length && i === expected.length,
    `Got ${actual.length} bytes, want ${expected.length}; first difference at ${i}: got ${
      actual[i]
    }, want ${expected[i]}`,
  );
}

/** Reads from `conn` until `length` bytes have arrived. */
async function readExactly(
  conn: Deno.Conn,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(out.subarray(got));
    if (n === null) break;
    got += n;
  }
  return out.subarray(0, got);
}

for (const [index, peer] of PEERS.entries()) {
  Deno.test({
    ...needs(
      peer.tools,
      `${peer.name} peer echoes bytes uppercased to each client and closes after half-close`,
    ),
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "upcase_peer_" });
      try {
        const built = await build(peer, dir);
        await using server = await PeerProcess.start(peer, built);

        // This client stays open while the others are served.
        using idle = await Deno.connect({
          hostname: "127.0.0.1",
          port: server.port,
        });
        await idle.write(encoder.encode("ping"));
        assertEquals(decoder.decode(await readExactly(idle, 4)), "PING");

        // A client that resets mid-reply must not take the server down.
        {
          const rude = await Deno.connect({
            hostname: "127.0.0.1",
            port: server.port,
          });
          // Small enough to sit in the socket buffers, so the write returns
          // while the peer is still echoing.
          const request = new Uint8Array(256 * 1024).fill(0x61);
          for (let off = 0; off < request.length;) {
            off += await rude.write(request.subarray(off));
          }
          await readExactly(rude, 1);
          // Closing with most of the reply unread sends a reset.
          rude.close();
        }

        const data = payload(index + 1);
        assertSameBytes(await exchange(server.port, data), asciiUpper(data));

        // The first client still works and gets its FIN after half-close.
        const pong = encoder.encode("pong ÿ");
        await idle.write(pong);
        await idle.closeWrite();
        const tail = await readExactly(idle, pong.length);
        assertEquals(decoder.decode(tail), "PONG ÿ");
        assertEquals(await idle.read(new Uint8Array(1)), null);

        const { status, stdout, stderr } = await server.stop();
        // Ended by our signal, so it was still up after every client.
        assertEquals(
          status.signal,
          "SIGTERM",
          `The peer should still be up when we stop it (SIGKILL means it hung and the watchdog fired):\n${stderr}`,
        );
        assertEquals(stdout, "", "Nothing but the listening line on stdout");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  ...needs(
    ["gcc", "go"],
    "c-epoll peer builds without warnings, stops reading a client that does not read, and owes it nothing after",
  ),
  async fn() {
    const peer = PEERS.find((p) => p.name === "c-epoll")!;
    const dir = await Deno.makeTempDir({ prefix: "upcase_peer_" });
    try {
      const [cmd, ...args] = peer.build!.cmd(`${dir}/c-epoll`);
      const built = await new Deno.Command(cmd!, {
        args,
        cwd: peer.build!.cwd,
        stdin: "null",
      }).output();
      assert(built.success, decoder.decode(built.stderr));
      assertEquals(decoder.decode(built.stderr), "", "No compiler warnings");
      const loadgen = await buildLoadgen(dir);
      await using server = await PeerProcess.start(peer, `${dir}/c-epoll`);

      // Each stuck client writes until every buffer on the way is full:
      // the peer must stop reading it once its replies cannot be written,
      // or the load generator fails with "still reading".
      await using stuck = await openIdle(loadgen, {
        addr: `127.0.0.1:${server.port}`,
        conns: 4,
        mode: "no-read",
      });
      assertEquals(stuck.ready.connected, 4);
      assertEquals(stuck.ready.errors, 0);
      assert(stuck.ready.bytesSentPerConn > 256 * 1024);

      // Meanwhile others are served.
      const data = payload(99);
      assertSameBytes(await exchange(server.port, data), asciiUpper(data));

      // Once they read, every reply is there, in order, then one more
      // exchange and a clean close after their half-close.
      const result = await stuck.finish();
      assertEquals(result.errors, 0, result.firstError);
      assertEquals(result.secondExchangeOk, 4);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
