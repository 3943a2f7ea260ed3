import { assertEquals } from "@std/assert";
import { LimitBroker } from "./limits.ts";
import { WorkerLimits } from "./worker_limits.ts";
import type { SupervisorMessage, WorkerMessage } from "./worker_protocol.ts";

function short(worker: number, m: SupervisorMessage): string {
  const fields = "id" in m
    ? m.kind === "grant" ? ` ${m.id}+${m.slots}` : ` ${m.id}`
    : "";
  return `w${worker} ${m.kind}${fields}`;
}

function broker(maxConnections: number, maxConnectionsPerIp: number) {
  const sent: string[] = [];
  const limits = new LimitBroker({
    maxConnections,
    maxConnectionsPerIp,
    workers: 2,
    send: (worker, m) => void sent.push(short(worker, m)),
  });
  limits.workerStarted(1);
  limits.workerStarted(2);
  // What it sent since the last look.
  const take = () => sent.splice(0);
  // Ends the limit's log episode, whose quiet timer would outlive the test.
  return { limits, take, [Symbol.dispose]: () => limits[Symbol.dispose]() };
}

Deno.test("LimitBroker leases each worker a share of the free slots", () => {
  using fixture = broker(8, 0);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "acquire", id: 1 });
  limits.receive(2, { kind: "acquire", id: 1 });
  limits.receive(1, { kind: "acquire", id: 2 });
  // 8 / 4, then 6 / 4, then 5 / 4: never all of it, and at least one.
  assertEquals(take(), ["w1 grant 1+2", "w2 grant 1+1", "w1 grant 2+1"]);
  assertEquals(limits.waiting, 0);
});

Deno.test("LimitBroker reclaims unused slots for a waiting request, and serves waiters first come first served across workers", () => {
  using fixture = broker(2, 0);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "acquire", id: 1 });
  limits.receive(1, { kind: "acquire", id: 2 });
  limits.receive(2, { kind: "acquire", id: 1 });
  assertEquals(take(), [
    "w1 grant 1+1",
    "w1 grant 2+1",
    "w2 wait 1",
    "w1 reclaim",
    "w2 reclaim",
  ]);
  limits.receive(2, { kind: "acquire", id: 2 });
  limits.receive(1, { kind: "acquire", id: 3 });
  limits.receive(1, { kind: "give", count: 0 });
  limits.receive(2, { kind: "give", count: 0 });
  assertEquals(take(), ["w2 wait 2", "w1 wait 3"]);
  assertEquals(limits.waiting, 3);
  // Each slot given back goes to the longest waiting request, one at a time.
  limits.receive(1, { kind: "give", count: 1 });
  assertEquals(take(), ["w2 grant 1+1"]);
  limits.receive(1, { kind: "give", count: 1 });
  assertEquals(take(), ["w2 grant 2+1"]);
  limits.receive(2, { kind: "give", count: 1 });
  assertEquals(take(), ["w1 grant 3+1", "w1 relax", "w2 relax"]);
  assertEquals(limits.waiting, 0);
});

Deno.test("LimitBroker checks the per-address limit when a waiting request gets its slot", () => {
  using fixture = broker(1, 1);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "acquire", id: 1, host: "10.0.0.1" });
  limits.receive(2, { kind: "acquire", id: 1, host: "10.0.0.1" });
  limits.receive(2, { kind: "acquire", id: 2, host: "10.0.0.3" });
  limits.receive(1, { kind: "give", count: 0 });
  limits.receive(2, { kind: "give", count: 0 });
  take();
  // 10.0.0.1 still holds its one connection: refused, and the next one in.
  limits.receive(1, { kind: "give", count: 1 });
  assertEquals(take(), ["w2 refuse 1", "w2 grant 2+1", "w1 relax", "w2 relax"]);
  limits.receive(1, { kind: "release", host: "10.0.0.1" });
  limits.receive(1, { kind: "address", id: 2, host: "10.0.0.1" });
  assertEquals(take(), ["w1 grant 2+0"]);
});

Deno.test("LimitBroker counts the real clients that PROXY headers name across workers", () => {
  using fixture = broker(0, 1);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "address", id: 1, host: "10.0.0.1" });
  limits.receive(2, { kind: "address", id: 1, host: "10.0.0.1" });
  limits.receive(2, { kind: "address", id: 2, host: "10.0.0.2" });
  assertEquals(take(), ["w1 grant 1+0", "w2 refuse 1", "w2 grant 2+0"]);
  limits.receive(1, { kind: "release", host: "10.0.0.1" });
  limits.receive(2, { kind: "address", id: 3, host: "10.0.0.1" });
  assertEquals(take(), ["w2 grant 3+0"]);
});

Deno.test("LimitBroker takes back what a worker that died held, and drops its waiting requests", () => {
  using fixture = broker(1, 1);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "acquire", id: 1, host: "10.0.0.1" });
  limits.receive(1, { kind: "acquire", id: 2, host: "10.0.0.2" });
  limits.receive(2, { kind: "acquire", id: 1, host: "10.0.0.1" });
  assertEquals(take(), [
    "w1 grant 1+1",
    "w1 wait 2",
    "w1 reclaim",
    "w2 reclaim",
    "w2 wait 1",
  ]);
  limits.workerGone(1);
  // Its slot and its address go to worker 2's client of the same address,
  // without waiting for the dead worker's answer to the reclaim.
  limits.receive(2, { kind: "give", count: 0 });
  assertEquals(take(), ["w2 grant 1+1", "w2 relax"]);
  assertEquals(limits.waiting, 0);
  // A late message from the dead worker changes nothing.
  limits.receive(1, { kind: "release", host: "10.0.0.1" });
  limits.receive(2, { kind: "address", id: 2, host: "10.0.0.1" });
  assertEquals(take(), ["w2 refuse 2"]);
});

Deno.test("LimitBroker tells a worker that starts while a request waits to give back freed slots", () => {
  using fixture = broker(1, 0);
  const { limits, take } = fixture;
  limits.receive(1, { kind: "acquire", id: 1 });
  limits.receive(1, { kind: "acquire", id: 2 });
  take();
  limits.workerGone(2);
  limits.workerStarted(2);
  assertEquals(take(), ["w2 reclaim"]);
});

function workerLimits(maxConnections: number, maxConnectionsPerIp: number) {
  const sent: WorkerMessage[] = [];
  const limits = new WorkerLimits({
    maxConnections,
    maxConnectionsPerIp,
    send: (m) => void sent.push(m),
  });
  return { limits, take: () => sent.splice(0) };
}

Deno.test("WorkerLimits fills and frees its leased slots without a message", async () => {
  const { limits, take } = workerLimits(10, 0);
  const first = limits.acquire(undefined);
  limits.receive({ kind: "grant", id: 1, slots: 2 });
  assertEquals(await first, "admitted");
  assertEquals(limits.acquire(undefined), "admitted");
  limits.release(undefined);
  assertEquals(limits.acquire(undefined), "admitted");
  assertEquals(take(), [{ kind: "acquire", id: 1 }]);
  // Both slots are taken: the next connection asks.
  void limits.acquire(undefined);
  assertEquals(take(), [{ kind: "acquire", id: 2 }]);
});

Deno.test("WorkerLimits gives back unused slots on reclaim, and each freed one until relax", async () => {
  const { limits, take } = workerLimits(10, 0);
  const first = limits.acquire(undefined);
  limits.receive({ kind: "grant", id: 1, slots: 3 });
  await first;
  take();
  limits.receive({ kind: "reclaim" });
  assertEquals(take(), [{ kind: "give", count: 2 }]);
  limits.release(undefined);
  assertEquals(take(), [{ kind: "give", count: 1 }]);
  const second = limits.acquire(undefined);
  limits.receive({ kind: "grant", id: 2, slots: 1 });
  await second;
  limits.receive({ kind: "relax" });
  limits.release(undefined);
  assertEquals(take(), [{ kind: "acquire", id: 2 }]);
  // The slot stayed: the next connection needs no message.
  assertEquals(limits.acquire(undefined), "admitted");
});

Deno.test("WorkerLimits asks about the per-address limit for every client with an address", async () => {
  const { limits, take } = workerLimits(0, 1);
  // A Unix socket client has no address to count.
  assertEquals(limits.acquire(undefined), "admitted");
  limits.release(undefined);
  const answer = limits.acquire("10.0.0.1");
  limits.receive({ kind: "refuse", id: 1 });
  assertEquals(await answer, "refused");
  assertEquals(take(), [{ kind: "address", id: 1, host: "10.0.0.1" }]);
});

Deno.test("WorkerLimits stops accepting while too many requests wait for an answer, and answers all when the supervisor is gone", async () => {
  const { limits } = workerLimits(0, 1);
  const answers = Array.from({ length: 256 }, () => limits.acquire("10.0.0.1"));
  const paused = limits.waitForCapacity();
  assertEquals(paused instanceof Promise, true);
  limits.receive({ kind: "grant", id: 1, slots: 0 });
  await paused;
  assertEquals(await answers[0], "admitted");
  assertEquals(limits.waitForCapacity(), undefined);
  limits.close();
  assertEquals(await answers[255], "closed");
  assertEquals(await limits.acquire("10.0.0.1"), "closed");
});
