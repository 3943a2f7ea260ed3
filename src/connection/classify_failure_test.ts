import { assertEquals } from "@std/assert";
import { classifyFailure } from "./classify_failure.ts";

const reset = new Deno.errors.ConnectionReset("Connection reset by peer");
const odd = new TypeError("Something else");

Deno.test("classifyFailure reports the server's cut reason over what the socket said", () => {
  for (const phase of ["handshake", "header", "data"] as const) {
    assertEquals(classifyFailure(reset, { phase, cut: "shutdown" }), {
      outcome: "ended",
      reason: "shutdown",
    });
  }
  assertEquals(
    classifyFailure(odd, { phase: "handshake", cut: "handshake_timeout" }),
    { outcome: "ended", reason: "handshake_timeout" },
  );
});

Deno.test("classifyFailure turns any failure in the PROXY header into a rejection, closed", () => {
  assertEquals(classifyFailure(reset, { phase: "header" }), {
    outcome: "rejected",
    reason: "closed",
    detail: "the header read failed: Connection reset by peer",
  });
});

Deno.test("classifyFailure reports a reset, by class or by errno code, as reset", () => {
  const piped = Object.assign(new Error("Broken pipe"), { code: "EPIPE" });
  assertEquals(classifyFailure(reset, { phase: "data" }).reason, "reset");
  assertEquals(classifyFailure(piped, { phase: "data" }).reason, "reset");
});

Deno.test("classifyFailure reports a TLS client gone without close_notify as eof", () => {
  const eof = new Deno.errors.UnexpectedEof("peer closed without close_notify");
  assertEquals(classifyFailure(eof, { phase: "data" }), {
    outcome: "ended",
    reason: "eof",
  });
});

Deno.test("classifyFailure keeps any other failure as an error, with the cause", () => {
  assertEquals(classifyFailure(odd, { phase: "handshake" }), {
    outcome: "ended",
    reason: "error",
    error: odd,
  });
});
