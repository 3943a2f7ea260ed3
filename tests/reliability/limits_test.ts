import { assert, assertEquals } from "@std/assert";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { serveOn } from "../_transport.ts";
import { recordFigure } from "../_figures.ts";
import { readAll, utf8 } from "../_helpers.ts";

const decoder = new TextDecoder();

interface Logs {
  messages: string[];
  /** Resolves once a message that includes `text` has been logged. */
  until(text: string): Promise<void>;
}

/** Collects the server's log messages while `fn` runs. */
async function withLogs(fn: (logs: Logs) => Promise<void>): Promise<void> {
  const messages: string[] = [];
  let waiters: { text: string; resolve: () => void }[] = [];
  configureSync({
    reset: true,
    sinks: {
      memory(record: LogRecord) {
        const message = record.message.map((p) => String(p)).join("");
        messages.push(message);
        waiters = waiters.filter((w) =>
          !message.includes(w.text) || void w.resolve()
        );
      },
    },
    loggers: [
      { category: ["upcase"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  const until = (text: string) =>
    messages.some((m) => m.includes(text))
      ? Promise.resolve()
      : new Promise<void>((resolve) => void waiters.push({ text, resolve }));
  try {
    await fn({ messages, until });
  } finally {
    resetSync();
  }
}

/** A client that sends `text` and reads back exactly its length. */
async function roundTrip(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(utf8(text));
  const buf = new Uint8Array(text.length);
  let got = 0;
  while (got < text.length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return decoder.decode(buf.subarray(0, got));
}

function connect(port: number) {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

Deno.test("serve at --max-connections stops accepting until a connection closes", async () => {
  await withLogs(async ({ messages, until }) => {
    await using server = await serveOn({
      hostname: "127.0.0.1",
      port: 0,
      maxConnections: 2,
      onListen() {},
    });
    const port = server.addr.port;
    const first = await connect(port);
    const second = await connect(port);
    assertEquals(await roundTrip(first, "one"), "ONE");
    assertEquals(await roundTrip(second, "two"), "TWO");
    // The third completes the TCP handshake in the kernel's backlog and
    // sends, but the server does not accept it while two are open.
    const third = await connect(port);
    await third.write(utf8("three"));
    // Round trips on the open connections give the server time to act.
    for (let i = 0; i < 5; i++) assertEquals(await roundTrip(first, "x"), "X");
    assertEquals(server.activeConnections, 2);
    const count = (text: string) =>
      messages.filter((m) => m.includes(text)).length;
    // Logged once for the episode, not once per accept attempt.
    assertEquals(
      count("connection limit of 2 reached"),
      1,
      messages.join("\n"),
    );
    assertEquals(count("accepting freely again"), 0);
    first.close();
    // Once a slot frees, the waiting client is served with nothing lost.
    const buf = new Uint8Array(5);
    let got = 0;
    while (got < 5) got += (await third.read(buf.subarray(got))) ?? 5;
    assertEquals(decoder.decode(buf), "THREE");
    second.close();
    third.close();
    // The episode ends once the server has stayed below the limit a while:
    // one line for it, after the same single warning.
    await until("accepting freely again");
    assertEquals(count("accepting freely again"), 1, messages.join("\n"));
    assertEquals(count("connection limit of 2 reached"), 1);
    await recordFigure({
      test: "connection limit",
      load: "--max-connections 2; a third client connects and sends",
      faults: "a client beyond the limit",
      result:
        "third waits in the backlog, unaccepted, while two are open; served in full " +
        "once one closes; limit and resume logged once each",
      bytesLost: 0,
    });
  });
});

Deno.test("serve at --max-connections-per-ip closes further connections from that address", async () => {
  await withLogs(async ({ messages, until }) => {
    await using server = await serveOn({
      hostname: "127.0.0.1",
      port: 0,
      maxConnectionsPerIp: 2,
      onListen() {},
    });
    const port = server.addr.port;
    const first = await connect(port);
    const second = await connect(port);
    assertEquals(await roundTrip(first, "a"), "A");
    assertEquals(await roundTrip(second, "b"), "B");
    // A third from the same address is closed at once: it reads EOF (or a
    // reset, if its data arrived first) and gets no echo.
    const third = await connect(port);
    await third.write(utf8("c")).catch(() => 0);
    const rest = await readAll(third.readable).catch(() => new Uint8Array());
    assertEquals(rest.length, 0);
    assert(messages.some((m) => m.includes("over the limit of 2 per address")));
    // Closing one frees a slot for that address.
    second.close();
    await until("connection 2 closed");
    const fourth = await connect(port);
    assertEquals(await roundTrip(fourth, "d"), "D");
    first.close();
    fourth.close();
    await recordFigure({
      test: "per-address limit",
      load: "--max-connections-per-ip 2; three clients from one address",
      faults: "a client beyond its address's limit",
      result:
        "third closed at once with no reply, refusal logged; a slot frees when one closes",
      bytesLost: 0,
    });
  });
});

Deno.test("serve closes a connection idle for --idle-timeout, and no busy one", async () => {
  await withLogs(async ({ until }) => {
    await using server = await serveOn({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 150,
      onListen() {},
    });
    const port = server.addr.port;
    const idle = await connect(port);
    assertEquals(await roundTrip(idle, "hi"), "HI");
    // A client that sends a byte every 50 ms for 600 ms (four timeouts)
    // keeps its connection; its pace is the load, not a synchronisation.
    const busy = await connect(port);
    for (let i = 0; i < 12; i++) {
      assertEquals(await roundTrip(busy, "b"), "B");
      await new Promise((r) => setTimeout(r, 50));
    }
    // The idle one has been closed by the server, with the reason logged.
    assertEquals(await idle.read(new Uint8Array(1)), null);
    await until("connection 1 closed (idle)");
    assertEquals(await roundTrip(busy, "still"), "STILL");
    idle.close();
    busy.close();
    await recordFigure({
      test: "idle timeout",
      load:
        "--idle-timeout 0.15; one idle client, one sending a byte every 50 ms for 600 ms",
      faults: "a client that goes silent",
      result:
        "idle client closed with reason idle; the busy one kept its connection",
      bytesLost: 0,
    });
  });
});
