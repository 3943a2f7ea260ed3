import { assertEquals, assertStrictEquals } from "@std/assert";
import { within } from "../../tests/_admin.ts";
import { Heartbeat, type HeartbeatChange } from "./heartbeat.ts";

type Ping = { id: number; seq: number; connections: number };

Deno.test("Heartbeat reports a worker silent after 3 beats without an answer, hung after 10, and answering when it answers again", async () => {
  const changes: string[] = [];
  const hung = Promise.withResolvers<void>();
  let lastSeq = 0;
  using heartbeat: Heartbeat = new Heartbeat({
    // Worker 2 answers every ping at once; worker 1 never does.
    ping(id, seq) {
      lastSeq = seq;
      if (id === 2) queueMicrotask(() => heartbeat.answered(id, seq));
    },
    onChange(id: number, change: HeartbeatChange) {
      changes.push(`${id} ${change}`);
      if (change === "hung") hung.resolve();
    },
    intervalMs: 5,
  });
  heartbeat.add(1);
  heartbeat.add(2);
  heartbeat.start();
  await within(hung.promise, 5000, "worker 1 reported hung");
  assertEquals(changes, ["1 silent", "1 hung"]);
  assertEquals(heartbeat.members, [
    { id: 1, silent: true },
    { id: 2, silent: false },
  ]);
  heartbeat.answered(1, lastSeq);
  assertEquals(changes, ["1 silent", "1 hung", "1 answering"]);
  assertEquals(heartbeat.members[0], { id: 1, silent: false });
});

Deno.test("Heartbeat.collect settles once every worker has answered, or after waitMs for one that does not", async () => {
  const pings: Ping[] = [];
  using heartbeat = new Heartbeat({
    ping: (id, seq, connections) => void pings.push({ id, seq, connections }),
    onChange() {},
    waitMs: 60_000,
    reuseMs: 0,
  });
  heartbeat.add(1);
  heartbeat.add(2);
  let settled = false;
  const collected = heartbeat.collect(10).then(() => settled = true);
  assertEquals(pings, [
    { id: 1, seq: 1, connections: 10 },
    { id: 2, seq: 1, connections: 10 },
  ]);
  heartbeat.answered(1, 1);
  await Promise.resolve();
  assertEquals(settled, false);
  heartbeat.answered(2, 1);
  await within(collected, 1000, "the collection");

  // A worker that does not answer holds a collection up for waitMs only.
  using short = new Heartbeat({ ping() {}, onChange() {}, waitMs: 10 });
  short.add(1);
  await within(short.collect(0), 5000, "a collection without an answer");
});

Deno.test("Heartbeat.collect shares a running collection and reuses a recent one, but not for a longer list", async () => {
  const pings: Ping[] = [];
  using heartbeat = new Heartbeat({
    ping: (id, seq, connections) => void pings.push({ id, seq, connections }),
    onChange() {},
    reuseMs: 60_000,
  });
  heartbeat.add(1);
  const first = heartbeat.collect(0);
  assertStrictEquals(heartbeat.collect(0), first);
  assertEquals(pings.length, 1);
  // A later answer answers every earlier ping too.
  const longer = heartbeat.collect(5);
  assertEquals(pings.length, 2);
  heartbeat.answered(1, 2);
  await within(Promise.all([first, longer]), 1000, "both collections");
  await heartbeat.collect(5);
  await heartbeat.collect(0);
  assertEquals(pings.length, 2, "reused within reuseMs");
});

Deno.test("Heartbeat.collect does not wait for a silent worker, nor for one that exits", async () => {
  const answered = Promise.withResolvers<void>();
  using heartbeat: Heartbeat = new Heartbeat({
    ping(id, seq) {
      if (id === 2) queueMicrotask(() => heartbeat.answered(id, seq));
    },
    onChange: (_id, change) => change === "silent" && answered.resolve(),
    intervalMs: 5,
    waitMs: 60_000,
    reuseMs: 0,
  });
  heartbeat.add(1);
  heartbeat.add(2);
  heartbeat.start();
  await within(answered.promise, 5000, "worker 1 reported silent");
  await within(heartbeat.collect(0), 1000, "a collection past a silent worker");

  heartbeat.add(3);
  const collected = heartbeat.collect(0);
  heartbeat.remove(3);
  await within(collected, 1000, "a collection past a worker that exited");
});
