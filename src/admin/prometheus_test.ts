import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { renderMetrics } from "./prometheus.ts";
import {
  DURATION_BUCKETS,
  type LiveConnection,
  ServerStats,
} from "../server/stats.ts";
import { parseMetrics, sample } from "../../tests/_admin.ts";

const INFO = { version: "1.2.3", deno: "2.9.6" };

/** Stats driven by a clock the test moves. */
function statsAt(clock: { now: number }): ServerStats {
  return new ServerStats(() => clock.now);
}

function live(id: number, bytesIn: number, bytesOut: number): LiveConnection {
  return {
    id,
    peer: `127.0.0.1:${4000 + id}`,
    startedAt: 0,
    lastActiveAt: 0,
    bytesIn,
    bytesOut,
  };
}

Deno.test("renderMetrics reports every close reason, zeros included", () => {
  const stats = statsAt({ now: 0 });
  stats.closed({ bytesIn: 1, bytesOut: 1, reason: "reset" }, 0.5);
  stats.closed({ bytesIn: 1, bytesOut: 1, reason: "reset" }, 0.5);
  const m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  const reasons = ["eof", "reset", "shutdown", "idle", "error"];
  assertEquals(
    reasons.map((r) => sample(m, `upcase_connections_total{reason="${r}"}`)),
    [0, 2, 0, 0, 0],
  );
});

Deno.test("renderMetrics counts open connections' bytes with the closed ones'", () => {
  const stats = statsAt({ now: 0 });
  stats.accepted();
  stats.accepted();
  stats.accepted();
  stats.closed({ bytesIn: 100, bytesOut: 90, reason: "eof" }, 1);
  const m = parseMetrics(
    renderMetrics(stats.snapshot([live(2, 7, 5), live(3, 11, 11)]), INFO),
  );
  assertEquals(sample(m, "upcase_connections_active"), 2);
  assertEquals(sample(m, "upcase_connections_accepted_total"), 3);
  assertEquals(sample(m, "upcase_bytes_received_total"), 100 + 7 + 11);
  assertEquals(sample(m, "upcase_bytes_sent_total"), 90 + 5 + 11);
});

Deno.test("renderMetrics writes a cumulative histogram whose +Inf bucket is its count", () => {
  const stats = statsAt({ now: 0 });
  const durations = [0.0005, 0.05, 0.05, 2, 7200];
  for (const d of durations) {
    stats.closed({ bytesIn: 0, bytesOut: 0, reason: "eof" }, d);
  }
  const m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  const bucket = (le: string) =>
    sample(m, `upcase_connection_duration_seconds_bucket{le="${le}"}`);
  // Each bucket counts the durations at or under its bound.
  for (const le of DURATION_BUCKETS) {
    assertEquals(
      bucket(String(le)),
      durations.filter((d) => d <= le).length,
      `le=${le}`,
    );
  }
  assertEquals(bucket("+Inf"), durations.length);
  assertEquals(
    sample(m, "upcase_connection_duration_seconds_count"),
    durations.length,
  );
  assertEquals(
    sample(m, "upcase_connection_duration_seconds_sum"),
    durations.reduce((a, b) => a + b),
  );
});

Deno.test("renderMetrics declares accept errors with no samples until one happens", () => {
  const stats = statsAt({ now: 0 });
  const before = renderMetrics(stats.snapshot([]), INFO);
  assertStringIncludes(before, "# TYPE upcase_accept_errors_total counter\n");
  assert(!/^upcase_accept_errors_total/m.test(before), before);
  stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
  stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
  stats.acceptFailed(Object.assign(new Error("x"), { code: "ENFILE" }));
  const m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(sample(m, 'upcase_accept_errors_total{kind="EMFILE"}'), 2);
  assertEquals(sample(m, 'upcase_accept_errors_total{kind="ENFILE"}'), 1);
});

Deno.test("renderMetrics escapes backslashes, quotes and newlines in label values", () => {
  const stats = statsAt({ now: 0 });
  const text = renderMetrics(stats.snapshot([]), {
    version: 'a\\b"c\nd',
    deno: "2.9.6",
  });
  assertStringIncludes(
    text,
    'upcase_build_info{version="a\\\\b\\"c\\nd",deno="2.9.6"} 1\n',
  );
});

Deno.test("renderMetrics reports draining, paused and uptime as gauges", () => {
  const clock = { now: 1000 };
  const stats = statsAt(clock);
  clock.now = 3500;
  stats.draining = true;
  let m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(sample(m, "upcase_draining"), 1);
  assertEquals(sample(m, "upcase_accepting_paused"), 0);
  assertEquals(sample(m, "upcase_uptime_seconds"), 2.5);
  stats.draining = false;
  stats.paused = true;
  m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(sample(m, "upcase_draining"), 0);
  assertEquals(sample(m, "upcase_accepting_paused"), 1);
});

Deno.test("renderMetrics reports the event loop's lag, recent and worst, in seconds", () => {
  const stats = statsAt({ now: 0 });
  let m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(sample(m, "upcase_event_loop_lag_seconds"), 0);
  stats.lag = { recentSeconds: 0.25, maxSeconds: 1.5 };
  m = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(sample(m, "upcase_event_loop_lag_seconds"), 0.25);
  assertEquals(sample(m, "upcase_event_loop_lag_max_seconds"), 1.5);
});

Deno.test("renderMetrics gives every sample's family a HELP and a TYPE line", () => {
  const stats = statsAt({ now: 0 });
  stats.acceptFailed(Object.assign(new Error("x"), { code: "EMFILE" }));
  const text = renderMetrics(stats.snapshot([live(1, 1, 1)]), INFO);
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    const declared = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (declared?.[1] === "HELP") helps.add(declared[2]!);
    else if (declared) types.set(declared[2]!, declared[3]!);
    else {
      const name = line.split(/[{ ]/)[0]!;
      const family = types.has(name)
        ? name
        : name.replace(/_(bucket|sum|count)$/, "");
      assert(types.has(family), `no TYPE for ${name}`);
      assert(helps.has(family), `no HELP for ${name}`);
      // Counters end in _total, and nothing else does.
      assertEquals(types.get(family) === "counter", family.endsWith("_total"));
    }
  }
  assertEquals(
    [...types.keys()].sort(),
    [
      "upcase_accept_errors_total",
      "upcase_accepting_paused",
      "upcase_build_info",
      "upcase_bytes_received_total",
      "upcase_bytes_sent_total",
      "upcase_connection_duration_seconds",
      "upcase_connections_accepted_total",
      "upcase_connections_active",
      "upcase_connections_refused_total",
      "upcase_connections_total",
      "upcase_draining",
      "upcase_event_loop_lag_max_seconds",
      "upcase_event_loop_lag_seconds",
      "upcase_proxy_rejected_total",
      "upcase_uptime_seconds",
    ],
  );
});

Deno.test("renderMetrics reports PROXY header rejections by reason, zeros included", () => {
  const stats = statsAt({ now: 0 });
  const before = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  const reasons = ["untrusted", "invalid", "timeout", "closed"];
  const counts = (m: Map<string, number>) =>
    reasons.map((r) => sample(m, `upcase_proxy_rejected_total{reason="${r}"}`));
  assertEquals(counts(before), [0, 0, 0, 0]);
  stats.proxyRejected("untrusted");
  stats.proxyRejected("timeout");
  stats.proxyRejected("timeout");
  stats.proxyRejected("closed");
  const after = parseMetrics(renderMetrics(stats.snapshot([]), INFO));
  assertEquals(counts(after), [1, 0, 2, 1]);
  // They are not closed connections: the served ones' counters stay put.
  assertEquals(sample(after, 'upcase_connections_total{reason="error"}'), 0);
});
