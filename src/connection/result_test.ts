import { assertEquals } from "@std/assert";
import { pipeConnection } from "./result.ts";
import { utf8 } from "../../tests/_helpers.ts";

function collector() {
  const chunks: Uint8Array[] = [];
  const writable = new WritableStream<Uint8Array>({
    write: (c) => void chunks.push(c),
  });
  const text = () => chunks.map((c) => new TextDecoder().decode(c)).join("");
  return { writable, text };
}

function failingReadable(
  first: string,
  error: Error,
): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (sent) return controller.error(error);
      sent = true;
      controller.enqueue(utf8(first));
    },
  });
}

Deno.test("pipeConnection reports eof and the byte counts when the client finishes", async () => {
  const out = collector();
  const result = await pipeConnection({
    readable: ReadableStream.from([utf8("ab"), utf8("c")]),
    writable: out.writable,
  });
  assertEquals(out.text(), "ABC");
  assertEquals(result, { bytesIn: 3, bytesOut: 3, reason: "eof" });
});

Deno.test("pipeConnection reports a reset from the client as reset, without rejecting", async () => {
  const out = collector();
  const result = await pipeConnection({
    readable: failingReadable(
      "hi",
      new Deno.errors.ConnectionReset("Connection reset by peer"),
    ),
    writable: out.writable,
  });
  assertEquals(result, { bytesIn: 2, bytesOut: 2, reason: "reset" });
});

Deno.test("pipeConnection reports a broken pipe on write as reset", async () => {
  const result = await pipeConnection({
    readable: ReadableStream.from([utf8("hi")]),
    writable: new WritableStream({
      write() {
        throw Object.assign(new Error("Broken pipe (os error 32)"), {
          code: "EPIPE",
        });
      },
    }),
  });
  assertEquals(result.reason, "reset");
});

Deno.test("pipeConnection reports any other failure as error, with the cause", async () => {
  const boom = new Error("boom");
  const result = await pipeConnection({
    readable: failingReadable("x", boom),
    writable: collector().writable,
  });
  assertEquals(result.reason, "error");
  assertEquals(result.error, boom);
});

Deno.test("pipeConnection reports shutdown when its signal cuts the connection", async () => {
  const controller = new AbortController();
  // A client that sends one chunk, then nothing, and never finishes.
  let pulls = 0;
  const readable = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(utf8("wait"));
    },
  });
  const seen = Promise.withResolvers<void>();
  const writable = new WritableStream<Uint8Array>({
    write: () => seen.resolve(),
  });
  const result = pipeConnection({ readable, writable }, {
    signal: controller.signal,
  });
  await seen.promise;
  controller.abort();
  assertEquals(await result, { bytesIn: 4, bytesOut: 4, reason: "shutdown" });
});

Deno.test("pipeConnection taps each received chunk before it is uppercased", async () => {
  const seen: string[] = [];
  await pipeConnection({
    readable: ReadableStream.from([utf8("one"), utf8("two")]),
    writable: collector().writable,
  }, { onChunk: (c) => void seen.push(new TextDecoder().decode(c)) });
  assertEquals(seen, ["one", "two"]);
});
