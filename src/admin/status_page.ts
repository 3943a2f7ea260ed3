import { LAG_THRESHOLD_MS } from "../server/loop_lag.ts";

// The page is one self-contained document: an operator may open it on a
// machine with no internet access, and the admin endpoint forbids outside
// assets with its Content-Security-Policy anyway.
const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --card: #fff; --fg: #1d2230; --muted: #5f6b7a;
  --line: #d9dde3; --head: #2f3b52; --head-fg: #fff;
  --in: #1f77b4; --out: #e8590c; --ok: #2b8a3e; --warn: #e67700; --bad: #c92a2a;
  --row: #f8f9fb;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171c; --card: #1c2027; --fg: #e3e6eb; --muted: #97a1ae;
    --line: #313843; --head: #2a3447; --row: #20252d;
    --in: #4dabf7; --out: #ff922b;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
header {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem;
  padding: .75rem 1rem; background: var(--head); color: var(--head-fg);
}
header h1 { margin: 0; font-size: 1.2rem; }
header .sub { opacity: .8; font-size: .85rem; }
#state {
  padding: .15rem .6rem; border-radius: 1rem; font-weight: 600;
  font-size: .8rem; text-transform: uppercase; letter-spacing: .04em;
  background: var(--muted); color: #fff;
}
#state[data-state="accepting"] { background: var(--ok); }
#state[data-state="paused"] { background: var(--warn); }
#state[data-state="draining"], #state[data-state="stopped"],
#state[data-state="unreachable"] { background: var(--bad); }
main {
  display: grid; gap: 1rem; padding: 1rem; max-width: 80rem; margin: 0 auto;
}
/* Side by side where they fit, stacked on a phone. */
.cards {
  display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fit, minmax(min(22rem, 100%), 1fr));
}
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  padding: .75rem 1rem; min-width: 0;
}
.card h2 {
  margin: 0 0 .5rem; font-size: .8rem; text-transform: uppercase;
  letter-spacing: .06em; color: var(--muted);
}
dl {
  display: grid; grid-template-columns: auto 1fr; gap: .2rem 1rem; margin: 0;
}
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; font-size: .9rem; }
.legend i {
  display: inline-block; width: .8rem; height: .8rem; border-radius: 2px;
  margin-right: .35rem; vertical-align: -1px;
}
.legend .in i { background: var(--in); }
.legend .out i { background: var(--out); }
.legend b { font-variant-numeric: tabular-nums; }
#chart { display: block; width: 100%; height: 180px; margin-top: .5rem; }
#chart .grid { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
#chart .mid { stroke: var(--muted); }
#chart-in, #chart-out { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
#chart-in { stroke: var(--in); }
#chart-out { stroke: var(--out); }
#area-in { fill: var(--in); opacity: .15; }
#area-out { fill: var(--out); opacity: .15; }
.axis { display: flex; justify-content: space-between; color: var(--muted); font-size: .75rem; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; text-align: right; white-space: nowrap; }
th { background: var(--head); color: var(--head-fg); font-weight: 600; font-size: .8rem; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
tbody tr:nth-child(even) { background: var(--row); }
tbody tr:hover { outline: 1px solid var(--in); }
td.idle-long { color: var(--warn); }
dd[data-high="true"] { color: var(--warn); font-weight: 600; }
.note { color: var(--muted); margin: .5rem 0 0; }
footer { padding: 0 1rem 1rem; color: var(--muted); font-size: .8rem; text-align: center; }
footer a { color: inherit; }
`;

// Written without template literals and `${`, since it sits inside one;
// the one `${` below puts the lag threshold in from the server's code.
const SCRIPT = `
"use strict";
var POLL_MS = 1000, SAMPLES = 60, W = 600, MID = 80;
var LAG_HIGH_S = ${LAG_THRESHOLD_MS / 1000};
// updates counts every sample ever taken: the chart keeps only the last 60.
var samples = [], previous = null, updates = 0;
var $ = function (id) { return document.getElementById(id); };
var count = new Intl.NumberFormat("en-US");

function set(id, value) { var el = $(id); if (el.textContent !== value) el.textContent = value; }
function bytes(n) {
  var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
}
function seconds(s) {
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  return s < 3600 ? pair(s / 60, "m", s % 60, "s")
    : s < 86400 ? pair(s / 3600, "h", s % 3600 / 60, "m")
    : pair(s / 86400, "d", s % 86400 / 3600, "h");
}
function pair(big, bigUnit, small, smallUnit) {
  var rest = Math.floor(small);
  return Math.floor(big) + " " + bigUnit + (rest ? " " + rest + " " + smallUnit : "");
}
function millis(ms, zero) { return ms === 0 ? zero : seconds(ms / 1000); }
function lag(s) { return s < 1 ? Math.round(s * 1000) + " ms" : seconds(s); }
function limit(n) { return n === 0 ? "no limit" : count.format(n); }

function cell(row, field, text, extra) {
  var td = document.createElement("td");
  td.dataset.field = field;
  td.textContent = text;
  if (extra) td.className = extra;
  row.appendChild(td);
}

function renderTable(s) {
  var body = document.createElement("tbody");
  s.stats.active.forEach(function (c) {
    var tr = document.createElement("tr");
    tr.dataset.id = String(c.id);
    tr.dataset.bytesIn = String(c.bytesIn);
    tr.dataset.bytesOut = String(c.bytesOut);
    cell(tr, "id", String(c.id));
    cell(tr, "peer", c.peer);
    cell(tr, "age", seconds(c.ageSeconds));
    cell(tr, "bytes-in", count.format(c.bytesIn));
    cell(tr, "bytes-out", count.format(c.bytesOut));
    var idleLimit = s.settings.idleTimeout / 1000;
    cell(tr, "idle", seconds(c.idleSeconds),
      idleLimit > 0 && c.idleSeconds > idleLimit / 2 ? "idle-long" : "");
    body.appendChild(tr);
  });
  $("connections").replaceChild(body, $("connections").tBodies[0]);
  var shown = s.stats.active.length;
  $("no-connections").hidden = s.activeTotal !== 0;
  $("truncated").hidden = shown === s.activeTotal;
  set("truncated", "Showing the " + count.format(shown) + " oldest of " +
    count.format(s.activeTotal) + " connections.");
}

// An echo server sends what it receives, so the two lines would hide each
// other: "in" is drawn upwards from the middle, "out" downwards.
function points(key, max, sign) {
  var offset = SAMPLES - samples.length;
  return samples.map(function (p, i) {
    var x = (offset + i) * W / (SAMPLES - 1);
    var y = MID - sign * p[key] / max * (MID - 4);
    return x.toFixed(1) + "," + y.toFixed(1);
  });
}

function renderChart() {
  // At least 1 KiB/s, so that a few stray bytes do not fill the chart.
  var max = 1024;
  samples.forEach(function (p) { max = Math.max(max, p.in, p.out); });
  // A round scale, so the axis reads 1 KiB/s rather than 913 B/s.
  var step = Math.pow(2, Math.ceil(Math.log2(max)));
  [["in", 1], ["out", -1]].forEach(function (series) {
    var key = series[0], line = points(key, step, series[1]);
    $("chart-" + key).setAttribute("points", line.join(" "));
    $("chart-" + key).dataset.points = String(line.length);
    var area = line.length === 0 ? "" :
      line[0].split(",")[0] + "," + MID + " " + line.join(" ") + " " +
      line[line.length - 1].split(",")[0] + "," + MID;
    $("area-" + key).setAttribute("points", area);
  });
  var last = samples[samples.length - 1] || { in: 0, out: 0 };
  $("chart").dataset.points = String(samples.length);
  $("chart").dataset.updates = String(updates);
  $("chart").dataset.maxIn = String(Math.max.apply(null, samples.map(function (p) { return p.in; }).concat(0)));
  set("rate-in", bytes(last.in) + "/s");
  set("rate-out", bytes(last.out) + "/s");
  set("chart-max", bytes(step) + "/s");
}

function render(s) {
  var st = s.stats;
  var state = s.stopped ? "stopped" : st.draining ? "draining" : st.paused ? "paused" : "accepting";
  $("state").dataset.state = state;
  set("state", state);
  set("version", "v" + s.version + " · Deno " + s.deno);
  set("uptime", "up " + seconds(st.uptimeSeconds));
  set("listen-addr", s.addr);
  set("listen-mode", s.settings.unicode ? "Unicode" : "ASCII");
  set("listen-transport", s.settings.transport || "deno");
  // With workers the limits and totals are the whole server's.
  set("listen-workers", count.format(s.workers || 1));
  set("listen-max", limit(s.settings.maxConnections));
  set("listen-max-ip", limit(s.settings.maxConnectionsPerIp));
  set("listen-idle", millis(s.settings.idleTimeout, "never"));
  set("listen-drain", millis(s.settings.drainTimeout, "none"));
  set("total-active", count.format(s.activeTotal));
  set("total-waiting", count.format(st.waiting || 0));
  set("total-lag", lag(st.eventLoopLagSeconds) + " · worst " + lag(st.eventLoopLagMaxSeconds));
  $("total-lag").dataset.high = String(st.eventLoopLagSeconds > LAG_HIGH_S);
  set("total-accepted", count.format(st.accepted));
  set("total-refused", count.format(st.refused));
  set("total-in", bytes(st.bytesIn));
  set("total-out", bytes(st.bytesOut));
  set("total-closed", Object.keys(st.closed).map(function (r) {
    return r + " " + count.format(st.closed[r]);
  }).join(" · "));
  var errors = Object.keys(st.acceptErrors);
  set("total-errors", errors.length === 0 ? "none" : errors.map(function (k) {
    return k + " " + count.format(st.acceptErrors[k]);
  }).join(" · "));
  set("active-count", "(" + count.format(s.activeTotal) + ")");
  if (previous && st.uptimeSeconds > previous.uptimeSeconds) {
    var dt = st.uptimeSeconds - previous.uptimeSeconds;
    samples.push({
      in: Math.max(0, st.bytesIn - previous.bytesIn) / dt,
      out: Math.max(0, st.bytesOut - previous.bytesOut) / dt,
    });
    if (samples.length > SAMPLES) samples.shift();
    updates++;
  }
  previous = st;
  renderChart();
  renderTable(s);
  set("updated", new Date().toLocaleTimeString());
}

function poll() {
  fetch("status.json", { cache: "no-store" })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(render)
    .catch(function () {
      $("state").dataset.state = "unreachable";
      set("state", "unreachable");
    })
    .then(function () { setTimeout(poll, POLL_MS); });
}
poll();
`;

const BODY = `
<header>
  <h1>upcase</h1>
  <span id="state" data-state="loading">loading</span>
  <span class="sub" id="version"></span>
  <span class="sub" id="uptime"></span>
</header>
<main>
  <div class="cards">
  <section class="card" id="listener">
    <h2>Listener</h2>
    <dl>
      <dt>address</dt><dd id="listen-addr">…</dd>
      <dt>mode</dt><dd id="listen-mode">…</dd>
      <dt>transport</dt><dd id="listen-transport">…</dd>
      <dt>workers</dt><dd id="listen-workers">…</dd>
      <dt>max connections</dt><dd id="listen-max">…</dd>
      <dt>per address</dt><dd id="listen-max-ip">…</dd>
      <dt>idle timeout</dt><dd id="listen-idle">…</dd>
      <dt>drain timeout</dt><dd id="listen-drain">…</dd>
    </dl>
  </section>
  <section class="card" id="totals">
    <h2>Totals</h2>
    <dl>
      <dt>active</dt><dd id="total-active">…</dd>
      <dt>waiting</dt><dd id="total-waiting">…</dd>
      <dt>event loop lag</dt><dd id="total-lag">…</dd>
      <dt>accepted</dt><dd id="total-accepted">…</dd>
      <dt>closed</dt><dd id="total-closed">…</dd>
      <dt>refused</dt><dd id="total-refused">…</dd>
      <dt>bytes in</dt><dd id="total-in">…</dd>
      <dt>bytes out</dt><dd id="total-out">…</dd>
      <dt>accept errors</dt><dd id="total-errors">…</dd>
    </dl>
  </section>
  </div>
  <section class="card" id="throughput">
    <h2>Throughput, last 60 s</h2>
    <div class="legend">
      <span class="in"><i></i>in <b id="rate-in">–</b></span>
      <span class="out"><i></i>out <b id="rate-out">–</b></span>
    </div>
    <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none"
      role="img" aria-label="bytes per second received and sent, last 60 seconds"
      data-points="0" data-updates="0" data-max-in="0">
      <line class="grid" x1="0" y1="4" x2="600" y2="4"/>
      <line class="grid" x1="0" y1="42" x2="600" y2="42"/>
      <line class="grid mid" x1="0" y1="80" x2="600" y2="80"/>
      <line class="grid" x1="0" y1="118" x2="600" y2="118"/>
      <line class="grid" x1="0" y1="156" x2="600" y2="156"/>
      <polygon id="area-in" points=""/>
      <polygon id="area-out" points=""/>
      <polyline id="chart-in" points="" data-points="0"/>
      <polyline id="chart-out" points="" data-points="0"/>
    </svg>
    <div class="axis"><span>60 s ago</span><span>in ↑ · out ↓ · edge <span id="chart-max">–</span></span><span>now</span></div>
  </section>
  <section class="card" id="active">
    <h2>Active connections <span id="active-count"></span></h2>
    <div class="table-wrap">
      <table id="connections">
        <thead><tr>
          <th scope="col">id</th><th scope="col">peer</th><th scope="col">age</th>
          <th scope="col">bytes in</th><th scope="col">bytes out</th><th scope="col">idle</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <p class="note" id="no-connections" hidden>No open connections.</p>
    <p class="note" id="truncated" hidden></p>
  </section>
</main>
<footer>
  Updated <span id="updated">never</span> · polls <a href="status.json">status.json</a>
  every second · <a href="metrics">metrics</a> · <a href="healthz">healthz</a> ·
  <a href="readyz">readyz</a>
</footer>
`;

/**
 * The admin endpoint's live status page, in the spirit of HAProxy's: the
 * listener and its settings, totals, the event loop's lag (marked above the
 * threshold that the log warns of), the open connections, and a throughput
 * chart. It polls `status.json`, next to it, every second. Everything is
 * inline, so it works offline, and it reflows down to a 360 px screen.
 *
 * @returns the page, a complete HTML document.
 *
 * @example
 * ```ts
 * import { assert, assertStringIncludes } from "@std/assert";
 * import { statusPage } from "./status_page.ts";
 *
 * const html = statusPage();
 * assertStringIncludes(html, '<table id="connections">');
 * assert(!/(src|href)="(https?:)?\/\//.test(html), "no outside assets");
 * ```
 */
export function statusPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>upcase status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;
}
