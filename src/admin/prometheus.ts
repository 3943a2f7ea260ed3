import { DURATION_BUCKETS, type StatsSnapshot } from "../server/stats.ts";

/** What {@linkcode renderMetrics} reports in `upcase_build_info`. */
export interface BuildInfo {
  /** upcase's version. */
  version: string;
  /** The Deno version it runs on, as `Deno.version.deno` gives it. */
  deno: string;
  /** The socket engine the server runs on (`--transport`), when known. */
  transport?: string;
}

type Labels = Record<string, string>;
type Sample = [labels: Labels, value: number, suffix?: string];

// The text format's escapes: in label values `\`, `"` and newline; in HELP
// text only `\` and newline.
function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

// Go's ParseFloat, which Prometheus uses, reads JavaScript's own number
// forms ("1e-7", "0.001") but spells the infinities and NaN its own way.
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) =>
    `${k}="${escapeLabelValue(v)}"`
  );
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function family(
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
  samples: Sample[],
): string {
  let text = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
  for (const [labels, value, suffix = ""] of samples) {
    text += `${name}${suffix}${formatLabels(labels)} ${formatValue(value)}\n`;
  }
  return text;
}

/**
 * Renders a server's statistics in the Prometheus text exposition format,
 * version 0.0.4, with HELP and TYPE lines for every family.
 *
 * @param stats A snapshot from `server.stats()`.
 * @param info The versions that `upcase_build_info` carries.
 * @returns the exposition, ending in a newline.
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { ServerStats } from "../server/stats.ts";
 * import { renderMetrics } from "./prometheus.ts";
 *
 * const stats = new ServerStats();
 * stats.closed({ bytesIn: 5, bytesOut: 5, reason: "eof" }, 0.002);
 * const text = renderMetrics(stats.snapshot([]), { version: "1.0.0", deno: "2.9.6" });
 * assertStringIncludes(text, 'upcase_connections_total{reason="eof"} 1\n');
 * assertStringIncludes(text, 'upcase_connection_duration_seconds_bucket{le="0.01"} 1\n');
 * assertStringIncludes(text, "upcase_bytes_received_total 5\n");
 * ```
 */
export function renderMetrics(stats: StatsSnapshot, info: BuildInfo): string {
  const count = stats.durationCounts.at(-1) ?? 0;
  const bounds = [...DURATION_BUCKETS, Infinity];
  return [
    family(
      "upcase_build_info",
      "gauge",
      "Always 1; the labels carry upcase's version, Deno's, and the transport.",
      [[{
        version: info.version,
        deno: info.deno,
        ...(info.transport ? { transport: info.transport } : {}),
      }, 1]],
    ),
    family(
      "upcase_uptime_seconds",
      "gauge",
      "Seconds since the server started.",
      [[{}, stats.uptimeSeconds]],
    ),
    family(
      "upcase_connections_active",
      "gauge",
      "Connections open now.",
      [[{}, stats.open]],
    ),
    family(
      "upcase_connections_accepted_total",
      "counter",
      "Connections accepted from the listener: open, closed, refused or rejected.",
      [[{}, stats.accepted]],
    ),
    family(
      "upcase_connections_total",
      "counter",
      "Connections closed, by the reason logged when they closed.",
      Object.entries(stats.closed).map(([reason, n]) => [{ reason }, n]),
    ),
    family(
      "upcase_connections_refused_total",
      "counter",
      "Connections closed at once for exceeding the per-address limit.",
      [[{}, stats.refused]],
    ),
    family(
      "upcase_proxy_rejected_total",
      "counter",
      "Connections closed unserved for their PROXY header: from an untrusted source, malformed, late, or closed before it was complete.",
      Object.entries(stats.proxyRejected).map(([reason, n]) => [{ reason }, n]),
    ),
    family(
      "upcase_bytes_received_total",
      "counter",
      "Bytes received from clients, on closed and open connections.",
      [[{}, stats.bytesIn]],
    ),
    family(
      "upcase_bytes_sent_total",
      "counter",
      "Bytes sent to clients, on closed and open connections.",
      [[{}, stats.bytesOut]],
    ),
    family(
      "upcase_connection_duration_seconds",
      "histogram",
      "How long closed connections were open.",
      [
        ...bounds.map((le, i): Sample => [
          { le: formatValue(le) },
          stats.durationCounts[i] ?? count,
          "_bucket",
        ]),
        [{}, stats.durationSum, "_sum"],
        [{}, count, "_count"],
      ],
    ),
    family(
      "upcase_accept_errors_total",
      "counter",
      "Failed accepts, by error code (such as EMFILE).",
      Object.entries(stats.acceptErrors).map(([kind, n]) => [{ kind }, n]),
    ),
    family(
      "upcase_draining",
      "gauge",
      "1 while the server drains after a shutdown began, else 0.",
      [[{}, stats.draining ? 1 : 0]],
    ),
    family(
      "upcase_event_loop_lag_seconds",
      "gauge",
      "Worst event loop lag of the last 10 s: how late connections were served. With --workers, the worst worker's.",
      [[{}, stats.eventLoopLagSeconds]],
    ),
    family(
      "upcase_event_loop_lag_max_seconds",
      "gauge",
      "Worst event loop lag since the server started. With --workers, the worst of the workers serving now.",
      [[{}, stats.eventLoopLagMaxSeconds]],
    ),
    family(
      "upcase_accepting_paused",
      "gauge",
      "1 while accepting is paused at --max-connections, else 0.",
      [[{}, stats.paused ? 1 : 0]],
    ),
  ].join("");
}
