import { assertEquals } from "@std/assert";
import { ServerStats } from "../server/stats.ts";
import {
  encodeSupervisorMessage,
  encodeWorkerMessage,
  parseSupervisorMessage,
  parseWorkerMessage,
  type SupervisorMessage,
  type WorkerMessage,
} from "./worker_protocol.ts";

Deno.test("worker protocol: every message survives its line, statistics included", () => {
  const stats = new ServerStats();
  stats.accepted();
  stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
  const snapshot = stats.snapshot([{
    id: 1,
    peer: "[2001:db8::1]:50000",
    startedAt: 0,
    lastActiveAt: 0,
    bytesIn: 3,
    bytesOut: 3,
  }]);
  const { active: _, ...counters } = snapshot;
  const fromWorker: WorkerMessage[] = [
    { kind: "ready" },
    { kind: "pong", seq: 7, stats: snapshot },
    { kind: "pong", seq: 8, stats: counters },
    { kind: "acquire", id: 1, host: "::1" },
    { kind: "give", count: 0 },
  ];
  for (const message of fromWorker) {
    const line = encodeWorkerMessage(message);
    assertEquals(line.includes("\n"), false);
    assertEquals(parseWorkerMessage(line), message);
  }
  const fromSupervisor: SupervisorMessage[] = [
    { kind: "ping", seq: 3, connections: 0 },
    { kind: "ping", seq: 4, connections: 250 },
    { kind: "reload" },
    { kind: "stop", reason: "SIGTERM" },
  ];
  for (const message of fromSupervisor) {
    assertEquals(
      parseSupervisorMessage(encodeSupervisorMessage(message)),
      message,
    );
  }
});

Deno.test("worker protocol: malformed pings and pongs are not messages", () => {
  for (
    const line of [
      "upcase-worker pong",
      "upcase-worker pong 0 {}",
      'upcase-worker pong 1 {"accepted":1}',
      "upcase-worker pong 1 {not json",
      "upcase-worker ready 9090",
    ]
  ) {
    assertEquals(parseWorkerMessage(line), undefined, line);
  }
  for (const line of ["ping", "ping 1", "ping 0 0", "ping 1 -1", "ping 1 x"]) {
    assertEquals(parseSupervisorMessage(line), undefined, line);
  }
});
