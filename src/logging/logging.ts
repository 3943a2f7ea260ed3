import {
  configureSync,
  getLogger,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { escapeControls } from "./escape_controls.ts";
import { LineQueue } from "./line_queue.ts";

/** The log levels that `--log-level` accepts, from most to least verbose. */
export const LOG_LEVELS = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
] as const;
/** A level that `--log-level` accepts. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** The formats that `--log-format` accepts. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A format that `--log-format` accepts. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Options for {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** The least severe level that is written. */
  level: LogLevelName;
  /** One line of text, or one JSON object, per record. */
  format: LogFormat;
  /** Where each formatted line goes; by default, standard error. */
  write?: (line: string) => void;
}

const LEVEL_LABELS: Record<LogRecord["level"], string> = {
  trace: "TRC",
  debug: "DBG",
  info: "INF",
  warning: "WRN",
  error: "ERR",
  fatal: "FTL",
};

// LogTape's own formatters inspect every value, which costs about 25 µs a
// line; these render values with String(), bare, as plain text. Values can
// come from the network (a PROXY header's address, an error that quotes
// input), so their control characters are escaped: a terminal that tails
// the log must not act on them, and a CR or LF must not forge a line.
function renderMessage(record: LogRecord): string {
  let text = "";
  const parts = record.message;
  for (let i = 0; i < parts.length; i++) {
    text += i % 2 === 0 ? parts[i] as string : escapeControls(String(parts[i]));
  }
  return text;
}

// JSON.stringify escapes C0 controls and lone surrogates, but writes DEL and
// the C1 controls as they are.
const JSON_UNSAFE = /[\u007f-\u009f]/;
const JSON_UNSAFE_ALL = /[\u007f-\u009f]/g;

let lastTimestamp = NaN;
let lastIso = "";

// Under load many lines share a millisecond, and formatting a date is not free.
function isoTime(timestamp: number): string {
  if (timestamp !== lastTimestamp) {
    lastTimestamp = timestamp;
    lastIso = new Date(timestamp).toISOString();
  }
  return lastIso;
}

function formatTextLine(record: LogRecord): string {
  const level = LEVEL_LABELS[record.level];
  const category = record.category.join(".");
  return `${isoTime(record.timestamp)} [${level}] ${category}: ${
    renderMessage(record)
  }\n`;
}

// Each value is also a field of its own, for log processors.
function formatJsonLine(record: LogRecord): string {
  const line = JSON.stringify({
    "@timestamp": isoTime(record.timestamp),
    level: record.level.toUpperCase(),
    logger: record.category.join("."),
    message: renderMessage(record),
    ...record.properties,
  });
  return (JSON_UNSAFE.test(line)
    ? line.replace(
      JSON_UNSAFE_ALL,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    )
    : line) + "\n";
}

// Asynchronous and bounded (see LineQueue): a reader that stalls must not
// freeze serving. flushLogs() before an exit writes what is left.
let stderrQueue: LineQueue | undefined;

function writeStderr(line: string): void {
  stderrQueue ??= new LineQueue(Deno.stderr, {
    onDropped: (dropped) =>
      getLogger(["upcase", "log"]).warning(
        "dropped {dropped} log lines while standard error was not being read",
        { dropped },
      ),
  });
  stderrQueue.push(line);
}

/**
 * Writes one whole line, newline included, to standard error through the
 * same bounded queue as the log records, so that it never blocks and keeps
 * its place among them. The supervisor of `--workers` forwards its
 * workers' lines with it.
 *
 * @param line The line, with its newline.
 */
export function writeLogLine(line: string): void {
  writeStderr(line);
}

/**
 * Waits until the log lines written so far have reached standard error, or
 * `timeoutMs` has passed; call it before `Deno.exit`, which would lose them.
 *
 * @param timeoutMs The most to wait, so that a stalled reader cannot keep
 * the process from exiting.
 * @returns true when every line was written.
 */
export function flushLogs(timeoutMs = 2000): Promise<boolean> {
  return stderrQueue?.flush(timeoutMs) ?? Promise.resolve(true);
}

/**
 * Sends the `upcase` loggers to standard error at the given level and in the
 * given format. A library user who embeds `serve()` can skip this and route
 * the `upcase` category with their own LogTape configuration.
 *
 * @param options The level, the format, and optionally where lines go.
 *
 * @example Log JSON lines
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getLogger, resetSync } from "@logtape/logtape";
 * import { setupLogging } from "./logging.ts";
 *
 * const lines: string[] = [];
 * setupLogging({ level: "info", format: "json", write: (l) => void lines.push(l) });
 * getLogger(["upcase", "server"]).info("listening on {address}", { address: "127.0.0.1:80" });
 * resetSync();
 * const line = JSON.parse(lines[0]!);
 * assertEquals(line.message, "listening on 127.0.0.1:80");
 * assertEquals(line.address, "127.0.0.1:80");
 * ```
 */
export function setupLogging(options: LoggingOptions): void {
  const { level, format, write = writeStderr } = options;
  const formatter = format === "json" ? formatJsonLine : formatTextLine;
  const sink: Sink = (record: LogRecord) => write(formatter(record));
  // The sink formats each record before it returns, so LogTape need not copy
  // the record first; this is the marker its own console sink carries, and it
  // halves the cost of a log line.
  Object.defineProperty(
    sink,
    Symbol.for("LogTape.sinkSnapshotPolicy.immediate"),
    {
      value: true,
    },
  );
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: ["upcase"], sinks: ["stderr"], lowestLevel: level },
      {
        category: ["logtape", "meta"],
        sinks: ["stderr"],
        lowestLevel: "warning",
      },
    ],
  });
}
