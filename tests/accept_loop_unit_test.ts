import { assertEquals, assertRejects } from "@std/assert";
import { acceptLoop, classifyAcceptError } from "../src/accept_loop.ts";

function errno(code: string): Error {
  return Object.assign(new Error(`os error (${code})`), { code });
}

/** A listener that replays a script of errors and connections. */
function scripted(steps: (string | Error)[], stop: AbortController) {
  let i = 0;
  return {
    accept(): Promise<string> {
      const step = steps[i++];
      if (step === undefined) {
        stop.abort();
        return Promise.reject(new Error("closed"));
      }
      return step instanceof Error
        ? Promise.reject(step)
        : Promise.resolve(step);
    },
  };
}

Deno.test("classifyAcceptError sorts errno codes into skip, backoff and fatal", () => {
  for (const code of ["ENOTCONN", "ECONNABORTED", "ECONNRESET"]) {
    assertEquals(classifyAcceptError(errno(code)), "skip");
  }
  for (const code of ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]) {
    assertEquals(classifyAcceptError(errno(code)), "backoff");
  }
  assertEquals(classifyAcceptError(errno("EBADF")), "fatal");
  assertEquals(classifyAcceptError(new Error("no code")), "fatal");
  assertEquals(classifyAcceptError("not an error"), "fatal");
});

Deno.test("acceptLoop skips connections that died in the queue and keeps accepting", async () => {
  const stop = new AbortController();
  const got: string[] = [];
  const sleeps: number[] = [];
  await acceptLoop(
    scripted([
      "a",
      errno("ENOTCONN"),
      errno("ECONNABORTED"),
      "b",
      errno("ECONNRESET"),
      "c",
    ], stop),
    {
      signal: stop.signal,
      onConnection: (c) => void got.push(c),
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  );
  assertEquals(got, ["a", "b", "c"]);
  assertEquals(sleeps, [], "skipping does not pause");
});

Deno.test("acceptLoop backs off from 5 ms doubling to 1 s on resource errors, and resets after a success", async () => {
  const stop = new AbortController();
  const got: string[] = [];
  const sleeps: number[] = [];
  const exhausted = Array.from(
    { length: 10 },
    (_, i) => errno(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"][i % 4]!),
  );
  await acceptLoop(
    scripted([...exhausted, "a", errno("EMFILE"), errno("EMFILE"), "b"], stop),
    {
      signal: stop.signal,
      onConnection: (c) => void got.push(c),
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  );
  assertEquals(got, ["a", "b"]);
  assertEquals(sleeps, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 5, 10]);
});

Deno.test("acceptLoop rejects on an unknown error and reports every error", async () => {
  const stop = new AbortController();
  const kinds: string[] = [];
  const fatal = errno("EBADF");
  const loop = acceptLoop(
    scripted([errno("ENOTCONN"), errno("EMFILE"), fatal, "never"], stop),
    {
      signal: stop.signal,
      onConnection: () => {},
      onAcceptError: (kind) => void kinds.push(kind),
      sleep: () => Promise.resolve(),
    },
  );
  const err = await assertRejects(() => loop);
  assertEquals(err, fatal);
  assertEquals(kinds, ["skip", "backoff", "fatal"]);
});

Deno.test("acceptLoop ends quietly when its signal aborts, even while backing off", async () => {
  const stop = new AbortController();
  let accepts = 0;
  const listener = {
    accept(): Promise<string> {
      accepts++;
      return Promise.reject(errno("EMFILE"));
    },
  };
  const loop = acceptLoop(listener, {
    signal: stop.signal,
    onConnection: () => {},
    sleep: () => {
      stop.abort();
      return Promise.resolve();
    },
  });
  await loop;
  assertEquals(accepts, 1);
});
