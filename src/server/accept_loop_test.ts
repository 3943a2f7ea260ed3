/**
 * Unit tests of acceptLoop with a fake listener: which accept failures it
 * skips, which it backs off from, that only a closed listener ends it, what
 * it logs, and how it stops.
 *
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { getLogger } from "@logtape/logtape";
import {
  type AcceptErrorKind,
  acceptLoop,
  type Acceptor,
} from "./accept_loop.ts";
import { within, withLogs } from "../../tests/_admin.ts";

function errno(code: string): Error {
  return Object.assign(new Error(`accept failed (${code})`), { code });
}

/**
 * A listener that plays back `steps`: a string is a connection, anything
 * else is what a failed accept rejects with. After the last step it behaves like a listener that is
 * being closed: it aborts `stop` and rejects the pending accept.
 */
class FakeListener implements Acceptor<string> {
  accepts = 0;
  #steps: unknown[];
  #stop: AbortController;

  constructor(steps: unknown[], stop: AbortController) {
    this.#steps = [...steps];
    this.#stop = stop;
  }

  accept(): Promise<string> {
    this.accepts++;
    if (this.#steps.length === 0) {
      this.#stop.abort();
      return Promise.reject(new Deno.errors.BadResource("Listener closed"));
    }
    const step = this.#steps.shift();
    return typeof step === "string"
      ? Promise.resolve(step)
      : Promise.reject(step);
  }
}

/** Runs the loop over `steps` and records what it did. */
async function run(steps: unknown[], maxBackoff?: number) {
  const stop = new AbortController();
  const listener = new FakeListener(steps, stop);
  const connections: string[] = [];
  const sleeps: number[] = [];
  const errors: [AcceptErrorKind, unknown][] = [];
  await acceptLoop(listener, {
    signal: stop.signal,
    onConnection: (c) => void connections.push(c),
    onAcceptError: (kind, err) => void errors.push([kind, err]),
    sleep: (ms, signal) => {
      assertEquals(signal, stop.signal, "sleep gets the stop signal");
      sleeps.push(ms);
      return Promise.resolve();
    },
    ...(maxBackoff === undefined ? {} : { maxBackoff }),
  });
  return { connections, sleeps, errors, accepts: listener.accepts };
}

// accept(2): the queued connection died, or Linux passed on its pending
// network error; either way the next connection is fine.
const SKIP_CODES = [
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "EPROTO",
  "EPERM",
  "ENETDOWN",
  "ENOPROTOOPT",
  "EHOSTDOWN",
  "ENONET",
  "EHOSTUNREACH",
  "EOPNOTSUPP",
  "ENETUNREACH",
  "ETIMEDOUT",
];

for (const code of SKIP_CODES) {
  Deno.test(`acceptLoop skips ${code} and hands over the next connection`, async () => {
    const failure = errno(code);
    const result = await run(["a", failure, "b", failure, failure, "c"]);
    assertEquals(result.connections, ["a", "b", "c"]);
    assertEquals(result.sleeps, [], "a skip does not pause");
    assertEquals(result.errors, [
      ["skip", failure],
      ["skip", failure],
      ["skip", failure],
    ]);
  });
}

Deno.test("acceptLoop backs off 5 ms doubling to a 1000 ms cap on EMFILE, ENFILE, ENOBUFS and ENOMEM", async () => {
  const codes = ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"];
  const failures = Array.from({ length: 11 }, (_, i) => errno(codes[i % 4]!));
  const result = await run([...failures, "a"]);
  assertEquals(
    result.sleeps,
    [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000],
  );
  assertEquals(result.connections, ["a"]);
  assertEquals(
    result.errors.map(([kind]) => kind),
    failures.map(() => "backoff"),
  );
});

Deno.test("acceptLoop starts the backoff again from 5 ms after a successful accept", async () => {
  const result = await run([
    errno("EMFILE"),
    errno("EMFILE"),
    errno("EMFILE"),
    "a",
    errno("ENFILE"),
    errno("ENFILE"),
    "b",
    errno("ENOMEM"),
    "c",
  ]);
  assertEquals(result.sleeps, [5, 10, 20, 5, 10, 5]);
  assertEquals(result.connections, ["a", "b", "c"]);
});

Deno.test("acceptLoop does not reset the backoff on a skipped connection", async () => {
  // A connection that died in the queue is no sign that descriptors are
  // free again.
  const result = await run([
    errno("EMFILE"),
    errno("ECONNABORTED"),
    errno("EMFILE"),
    "a",
  ]);
  assertEquals(result.sleeps, [5, 10]);
  assertEquals(result.connections, ["a"]);
});

Deno.test("acceptLoop honours a smaller maxBackoff", async () => {
  const result = await run(
    Array.from({ length: 6 }, () => errno("ENOBUFS")),
    50,
  );
  assertEquals(result.sleeps, [5, 10, 20, 40, 50, 50]);
});

// An error Deno gives no code, one it does not know, or a code this loop
// does not know: none of them may end the server, nor spin the CPU.
const UNKNOWN_FAILURES = [
  ["an error without a code", new Error("something else")],
  ["an unknown code", errno("EWHATEVER")],
  ["a thrown non-error", { weird: true }],
  ["an undefined rejection", undefined],
] as const;

for (const [label, failure] of UNKNOWN_FAILURES) {
  Deno.test(`acceptLoop backs off on ${label} and keeps accepting`, async () => {
    const failures = Array.from({ length: 5 }, () => failure);
    const result = await run(["a", ...failures, "b"]);
    assertEquals(result.connections, ["a", "b"]);
    assertEquals(result.sleeps, [5, 10, 20, 40, 80], "one pause per failure");
    assertEquals(
      result.errors.map(([kind]) => kind),
      failures.map(() => "backoff"),
    );
  });
}

const CLOSED_FAILURES = [
  ["BadResource", new Deno.errors.BadResource("Listener has been closed")],
  ["Interrupted", new Deno.errors.Interrupted("operation canceled")],
  ["EBADF", errno("EBADF")],
  ["EINVAL", errno("EINVAL")],
  ["ENOTSOCK", errno("ENOTSOCK")],
] as const;

for (const [label, failure] of CLOSED_FAILURES) {
  Deno.test(`acceptLoop stops on ${label}, a closed listener, and rejects with it`, async () => {
    const stop = new AbortController();
    const listener = new FakeListener(["a", failure, "b"], stop);
    const connections: string[] = [];
    const kinds: AcceptErrorKind[] = [];
    const outcome = await acceptLoop(listener, {
      signal: stop.signal,
      onConnection: (c) => void connections.push(c),
      onAcceptError: (kind) => void kinds.push(kind),
      sleep: () => Promise.reject(new Error("must not back off")),
    }).then(() => "resolved", (err: unknown) => err);
    assertStrictEquals(outcome, failure, "rejects with the accept's error");
    assertEquals(connections, ["a"]);
    assertEquals(kinds, ["closed"]);
    assertEquals(listener.accepts, 2, "no accept after the listener closed");
  });
}

Deno.test("acceptLoop rejects with BadResource when a real listener is closed under it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const loop = acceptLoop(listener, {
    signal: new AbortController().signal,
    onConnection: (c) => c.close(),
    sleep: () => Promise.reject(new Error("must not back off")),
  });
  listener.close();
  const outcome = await loop.then(() => "resolved", (err: unknown) => err);
  assert(outcome instanceof Deno.errors.BadResource, String(outcome));
});

Deno.test("acceptLoop logs each kind of failure once per run of failures", async () => {
  await withLogs(async (logs) => {
    const result = await run([
      errno("EMFILE"),
      errno("EMFILE"),
      errno("EPROTO"),
      errno("ENFILE"),
      errno("EPROTO"),
      errno("EMFILE"),
      new Error("odd"),
      new Error("odd"),
      "a",
      errno("EMFILE"),
      errno("EPROTO"),
      "b",
      errno("ECONNABORTED"),
      "c",
    ]);
    assertEquals(result.connections, ["a", "b", "c"]);
    const warnings = logs.records
      .filter((r) => r.level === "warning")
      .map((r) => [r.category.join("."), logs.message(r)]);
    const pausing = "pausing accepts until it clears";
    assertEquals(warnings, [
      ["upcase.accept", `accept failed: accept failed (EMFILE); ${pausing}`],
      [
        "upcase.accept",
        "accept failed: accept failed (EPROTO); skipped that connection",
      ],
      ["upcase.accept", `accept failed: accept failed (ENFILE); ${pausing}`],
      ["upcase.accept", `accept failed: odd; ${pausing}`],
      ["upcase.accept", "accepting again after 6 failed accepts"],
      ["upcase.accept", `accept failed: accept failed (EMFILE); ${pausing}`],
      [
        "upcase.accept",
        "accept failed: accept failed (EPROTO); skipped that connection",
      ],
      ["upcase.accept", "accepting again after 1 failed accepts"],
    ]);
  });
});

Deno.test("acceptLoop logs to the logger it is given", async () => {
  await withLogs(async (logs) => {
    const stop = new AbortController();
    const listener = new FakeListener([errno("EMFILE"), "a"], stop);
    await acceptLoop(listener, {
      signal: stop.signal,
      onConnection: () => {},
      sleep: () => Promise.resolve(),
      log: getLogger(["upcase", "admin"]),
    });
    assertEquals(
      logs.records.map((r) => r.category.join(".")),
      ["upcase.admin", "upcase.admin"],
    );
  });
});

Deno.test("acceptLoop ends quietly when aborted while an accept is pending", async () => {
  const stop = new AbortController();
  const pending = Promise.withResolvers<string>();
  let accepts = 0;
  const loop = acceptLoop({
    accept() {
      accepts++;
      return pending.promise;
    },
  }, {
    signal: stop.signal,
    onConnection: () => {
      throw new Error("no connection expected");
    },
  });
  // Closing a Deno listener rejects the pending accept, with an error that
  // would otherwise be fatal.
  stop.abort();
  pending.reject(new Deno.errors.BadResource("Listener has been closed"));
  await loop;
  assertEquals(accepts, 1);
});

Deno.test("acceptLoop ends at once when aborted during a backoff, with the real sleep", async () => {
  const stop = new AbortController();
  const backingOff = Promise.withResolvers<void>();
  let accepts = 0;
  const loop = acceptLoop({
    accept() {
      accepts++;
      return Promise.reject(errno("EMFILE"));
    },
  }, {
    signal: stop.signal,
    onConnection: () => {},
    onAcceptError: () => backingOff.resolve(),
    // An hour: only the abort can end this sleep in time; the ops sanitizer
    // also fails the test if its timer is left behind.
    minBackoff: 3_600_000,
    maxBackoff: 3_600_000,
  });
  await backingOff.promise;
  stop.abort();
  await within(loop, 5000, "the loop did not end");
  assertEquals(accepts, 1);
});

Deno.test("acceptLoop ends when aborted while waiting for capacity, without accepting", async () => {
  const stop = new AbortController();
  const waiting = Promise.withResolvers<void>();
  let accepts = 0;
  const loop = acceptLoop({
    accept() {
      accepts++;
      return Promise.resolve("never");
    },
  }, {
    signal: stop.signal,
    onConnection: () => {},
    waitForCapacity: () => {
      waiting.resolve();
      return new Promise<void>(() => {});
    },
  });
  await waiting.promise;
  stop.abort();
  await within(loop, 5000, "the loop did not end");
  assertEquals(accepts, 0);
});

Deno.test("acceptLoop with an already aborted signal accepts nothing", async () => {
  const stop = new AbortController();
  stop.abort();
  const listener = new FakeListener(["a"], stop);
  await acceptLoop(listener, {
    signal: stop.signal,
    onConnection: () => {
      throw new Error("no connection expected");
    },
  });
  assertEquals(listener.accepts, 0);
});
