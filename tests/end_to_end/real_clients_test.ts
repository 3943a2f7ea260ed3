import { assertEquals } from "@std/assert";
import { serveOn } from "../_transport.ts";
import { asciiUpper, needs, randomBytes, runClient } from "../_helpers.ts";

const PYTHON = "/usr/bin/python3";

async function start(unicode = false) {
  return await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    unicode,
    onListen() {},
  });
}

Deno.test({
  ...needs(["nc"], "nc -N gets its input back uppercased after half-close"),
  async fn() {
    await using server = await start();
    const out = await runClient(
      "nc",
      ["-N", "127.0.0.1", String(server.addr.port)],
      new TextEncoder().encode("abc"),
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(new TextDecoder().decode(out.stdout), "ABC");
  },
});

Deno.test({
  ...needs(["nc"], "nc -N streams 2 MiB of binary data byte-exact"),
  async fn() {
    await using server = await start();
    const data = randomBytes(2 * 1024 * 1024, 5);
    const out = await runClient(
      "nc",
      ["-N", "127.0.0.1", String(server.addr.port)],
      data,
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(out.stdout, asciiUpper(data));
  },
});

// The client sends in odd-sized pieces while a thread reads, then half-closes
// and checks the reply against Python's own bytes.upper() / str.upper().
const PYTHON_CLIENT = `
import socket, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port))
got = bytearray()
def reader():
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return
        got.extend(chunk)
t = threading.Thread(target=reader)
t.start()
for i in range(0, len(data), 777):
    s.sendall(data[i:i + 777])
s.shutdown(socket.SHUT_WR)
t.join()
s.close()
want = data.upper() if mode == "ascii" else data.decode("utf-8").upper().encode("utf-8")
if bytes(got) != want:
    sys.exit("mismatch: got %d bytes, want %d" % (len(got), len(want)))
print("ok", len(got))
`;

Deno.test({
  ...needs([PYTHON], "python socket client gets bytes.upper() of random data"),
  async fn() {
    await using server = await start();
    const out = await runClient(PYTHON, [
      "-c",
      PYTHON_CLIENT,
      String(server.addr.port),
      "ascii",
    ], randomBytes(1_000_000, 9));
    assertEquals(out.code, 0, out.stderr);
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "ok 1000000");
  },
});

Deno.test({
  ...needs(
    [PYTHON],
    "python socket client gets str.upper() of Unicode text in unicode mode",
  ),
  async fn() {
    await using server = await start(true);
    const text = "straße ǆ café ﬀ ŉ 😀 日本語 ".repeat(5000);
    const out = await runClient(PYTHON, [
      "-c",
      PYTHON_CLIENT,
      String(server.addr.port),
      "unicode",
    ], new TextEncoder().encode(text));
    assertEquals(out.code, 0, out.stderr);
  },
});
