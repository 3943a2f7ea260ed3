import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  type PingpongFigures,
  renderMarkdown,
  renderSvg,
  type RunInfo,
  type ServerFigures,
  targets,
  transportChoice,
} from "./bench_report.ts";

// The figures measured in issue #13 (1,000 connections of 64-byte
// ping-pong, 5 s), with made-up bulk, memory and CPU figures around them.
const INFO: RunInfo = {
  date: "2026-01-01 00:00 UTC",
  machine: "2 cores",
  versions: [],
  sizes: { idleConns: 10_000, pingpongConns: 1000, seconds: 5 },
  kernels: {},
  quick: false,
};

function pp(
  msgsPerSec: number,
  p999Ms: number,
  least: number,
  mean: number,
): PingpongFigures {
  return {
    msgsPerSec,
    p50Us: 2000,
    p99Us: p999Ms * 500,
    p999Us: p999Ms * 1000,
    minConnMsgs: least,
    meanConnMsgs: mean,
    starvedConnWindows: least === 0 ? 5 : 0,
    msgsPerCpuSecond: msgsPerSec / 0.9,
  };
}

function server(
  name: string,
  figures: {
    bulk: number;
    pingpong: PingpongFigures;
    idleKB: number;
    swept?: boolean;
  },
): ServerFigures {
  const { bulk, pingpong, idleKB } = figures;
  return {
    name,
    label: `${name} label`,
    bulk1: bulk,
    bulk100: bulk,
    pingpong,
    pingpong1: pp(16_000, 0.1, 80_000, 80_000),
    idleKB,
    notes: [],
    loadCpu: { pingpong: 100 },
    serverCpu: { pingpong: 90 },
    perCpuSecond: {
      bulk1: bulk / 0.95,
      bulk100: bulk / 0.95,
      pingpong: pingpong.msgsPerCpuSecond!,
      pingpong1: 16_000 / 0.9,
    },
    ...(figures.swept
      ? {
        sweep: [20, 10, 0].map((pauseMs) => ({
          ...(pauseMs === 0 ? pingpong : pp(48_000 + pauseMs, 1, 240, 241)),
          pauseMs,
          serverCpuPercent: pauseMs === 0 ? 99 : 40,
          loadCpuPercent: 60,
        })),
      }
      : {}),
  };
}

function issueFigures(): ServerFigures[] {
  return [
    server("upcase", {
      bulk: 1500,
      pingpong: pp(106_000, 1450, 26, 531),
      idleKB: 11.8,
      swept: true,
    }),
    server("go-64k", {
      bulk: 290,
      pingpong: pp(145_000, 12, 718, 727),
      idleKB: 9.7,
      swept: true,
    }),
    server("c-epoll", {
      bulk: 1400,
      pingpong: pp(166_000, 13, 813, 833),
      idleKB: 0.5,
      swept: true,
    }),
    server("deno-node-net", {
      bulk: 220,
      pingpong: pp(114_000, 20, 552, 570),
      idleKB: 5.3,
      swept: true,
    }),
    server("deno-raw", {
      bulk: 264,
      pingpong: pp(61_424, 1427, 20, 307),
      idleKB: 63,
    }),
  ];
}

function line(lines: { text: string; met: boolean | undefined }[], re: RegExp) {
  const found = lines.filter((t) => re.test(t.text));
  assertEquals(found.length, 1, `one target matching ${re}`);
  return found[0]!;
}

Deno.test("targets check the issue's saturation, p999, C and deno-raw targets", () => {
  const all = issueFigures();
  const t = targets(all, INFO);
  const fair = line(t, /^upcase at saturation/);
  assertEquals(fair.met, false);
  assertMatch(
    fair.text,
    /least-served connection 26 messages, 0\.05x the mean of 531/,
  );
  const p999 = line(t, /^upcase ping-pong p999/);
  assertEquals(p999.met, false);
  assertMatch(p999.text, /1450\.0 ms, 120\.83x Go's 12\.0 ms/);
  // 1,500 against the C peer's 1,400 MB/s: met, at 1 and at 100.
  const bulk = t.filter((x) => /^upcase bulk .* the C peer's/.test(x.text));
  assertEquals(bulk.map((x) => x.met), [true, true]);
  // deno-raw is better in no column: p99 and p999 are within 5%.
  const raw = line(t, /no worse than the bare Deno loop/);
  assertEquals(raw.met, true, raw.text);
  // Without the node transport's row, none of its targets appear.
  assertEquals(t.filter((x) => x.text.startsWith("upcase-node")), []);

  // Fair and quick enough: met.
  all[0]!.pingpong = pp(106_000, 20, 400, 531);
  const better = targets(all, INFO);
  assertEquals(line(better, /^upcase at saturation/).met, true);
  assertEquals(line(better, /^upcase ping-pong p999/).met, true);
});

Deno.test("targets name every column where upcase is worse than deno-raw", () => {
  const all = issueFigures();
  all[0]!.idleKB = 70;
  all[0]!.bulk100 = 200;
  all[0]!.perCpuSecond["bulk100"] = 210;
  const raw = line(targets(all, INFO), /no worse than the bare Deno loop/);
  assertEquals(raw.met, false);
  assertMatch(
    raw.text,
    /worse in bulk 100 conns 200 against 264; idle KB\/conn 70\.0 against 63\.0; bulk 100 MB per CPU-s 210 against 278$/,
  );
});

Deno.test("targets for the node transport apply once its row exists", () => {
  const all = issueFigures();
  all.splice(
    1,
    0,
    server("upcase-node", {
      bulk: 1200,
      pingpong: pp(114_000, 20, 552, 570),
      idleKB: 16,
    }),
  );
  const t = targets(all, INFO);
  assertEquals(line(t, /^upcase-node at saturation/).met, true);
  assertEquals(line(t, /^upcase-node ping-pong p999/).met, true);
  // 1,200 MB/s: 0.86x the C peer's and 0.8x the deno transport's.
  const bulk = t.filter((x) => /^upcase-node bulk/.test(x.text));
  assertEquals(bulk.length, 4);
  assert(bulk.every((x) => x.met === false), JSON.stringify(bulk));
  const idle = line(t, /^upcase-node idle memory/);
  assertMatch(
    idle.text,
    /16\.0 KB\/conn \(target 5 KB; the deno transport's: 11\.8 KB\)/,
  );
  assertEquals(idle.met, false);
  all.push(server("deno-raw-512", {
    bulk: 100,
    pingpong: pp(88_000, 1400, 69, 440),
    idleKB: 7.8,
  }));
  const report = renderMarkdown(all, INFO);
  assertMatch(
    report,
    /- upcase-node idle memory: .*\(deno-node-net\) holds 5\.3 KB.* upcase holds 11\.8 KB, .* deno-raw-512 7\.8 KB without/,
  );
});

Deno.test("renderMarkdown shows the sweep, work per CPU-second and the C peer", () => {
  const md = renderMarkdown(issueFigures(), INFO);
  assertMatch(
    md,
    /## Saturation sweep \(ping-pong, 1,000 connections, 64 bytes\)/,
  );
  // A paced step: offered at most 1,000 / 20 ms.
  assertMatch(
    md,
    /\| upcase \| 20 \| 50,000 \| 48,020 \| 2\.00 \/ 0\.500 \/ 1\.00 \| 240 \/ 241 \| 53,356 \| 40 \/ 60 \|/,
  );
  // Saturation is the ping-pong scenario.
  assertMatch(
    md,
    /\| c-epoll \| 0 \(saturation\) \| – \| 166,000 \| 2\.00 \/ 6\.50 \/ 13\.0 \| 813 \/ 833 \| 184,444 \| 99 \/ 60 \|/,
  );
  // deno-raw has no sweep.
  assert(!/\| deno-raw \| 20 \|/.test(md));
  // The figures table's per-CPU and least-served / mean columns.
  assertMatch(
    md,
    /\| c-epoll: c-epoll label \| 1,400 \| 1,400 \| 166,000 \| 184,444 \|/,
  );
  assertMatch(md, /\| 26 \/ 531 \|/);
  assertMatch(
    md,
    /\| go-64k \| 305 \| 305 \| 161,111 \| 17,778 \|/,
  );
  assertMatch(md, /\*\*NOT met\*\*: upcase at saturation/);
});

Deno.test("renderSvg draws one sweep line per swept server in each chart", () => {
  const svg = renderSvg(issueFigures());
  assertEquals(svg.match(/<polyline /g)?.length, 2 * 4);
  for (const points of svg.matchAll(/points="([^"]+)"/g)) {
    // Three steps each: 20 ms, 10 ms, saturation.
    assertEquals(points[1]!.split(" ").length, 3);
    assert(!points[1]!.includes("NaN"), points[1]);
  }
  assertMatch(svg, /Ping-pong, msg per server CPU-second/);
  assertMatch(svg, />sat\.</);
  assert(svg.endsWith("</svg>\n"));
});

Deno.test("the report says which transport to pick once both rows are in the run", () => {
  const all = issueFigures();
  assertEquals(transportChoice(all), []);
  all.splice(
    1,
    0,
    server("upcase-node", {
      bulk: 1200,
      pingpong: pp(114_000, 20, 552, 570),
      idleKB: 5,
    }),
  );
  const text = transportChoice(all).join("\n");
  assertMatch(text, /\| least-served connection \/ mean \| 0\.05 \| 0\.97 \|/);
  assertMatch(
    text,
    /Pick `node` where the server may run saturated with many busy connections, so that none starves, and where idle memory matters; pick `deno` for the highest bulk throughput, or where/,
  );
  // With more idle memory on node, that is not a reason to pick it.
  all[1]!.idleKB = 20;
  assertMatch(
    transportChoice(all).join("\n"),
    /so that none starves; pick `deno` for the highest bulk throughput and the least idle memory, or where/,
  );
});

Deno.test("renderMarkdown explains a bulk behind the C peer with CPU figures, and only then", () => {
  const all = issueFigures();
  const us = all[0]!;
  us.bulk100 = 800;
  us.perCpuSecond["bulk100"] = 810;
  us.loadCpu["bulk100"] = 60;
  all.find((s) => s.name === "c-epoll")!.loadCpu["bulk100"] = 98;
  const md = renderMarkdown(all, INFO).replace(/\n +/g, " ");
  assertMatch(
    md,
    /- Bulk against the C peer \(upcase 100 connections: 0\.57x, 810 MB per server CPU-second against C's 1,474, load generator at 60% of its core against C's 98%\)/,
  );
  // With 1 connection upcase is ahead of C (1,500 against 1,400): no word.
  assert(!/upcase 1 connection:/.test(md));
  // Ahead of C everywhere: no explanation at all.
  assert(!/Bulk against the C peer/.test(renderMarkdown(issueFigures(), INFO)));
});

Deno.test("renderMarkdown blames Deno's polling for starvation only when deno-raw starved too", () => {
  const all = issueFigures();
  all[0]!.pingpong!.starvedConnWindows = 12;
  const raw = all.find((s) => s.name === "deno-raw")!.pingpong!;
  raw.starvedConnWindows = 0;
  const calm = renderMarkdown(all, INFO).replace(/\n +/g, " ");
  assertMatch(
    calm,
    /deno-raw\) left no connection a whole second without a reply, but its p999 was 1427\.0 ms/,
  );
  assert(!/starves too/.test(calm));
  raw.starvedConnWindows = 7;
  const starved = renderMarkdown(all, INFO).replace(/\n +/g, " ");
  assertMatch(
    starved,
    /\(deno-raw\) starves too \(7 connection-seconds without a reply/,
  );
});
