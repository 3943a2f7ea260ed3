import {
  configureSync,
  getTextFormatter,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";

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

const encoder = new TextEncoder();

// LogTape's JSON formatter quotes string values inside the message; this
// one renders them bare, as the text format does, and keeps the values as
// fields of their own.
function formatJsonLine(record: LogRecord): string {
  const message = record.message
    .map((part, i) => (i % 2 === 0 ? part : String(part)))
    .join("");
  return JSON.stringify({
    "@timestamp": new Date(record.timestamp).toISOString(),
    level: record.level.toUpperCase(),
    logger: record.category.join("."),
    message,
    ...record.properties,
  }) + "\n";
}

// Synchronous, so that nothing is lost when the process exits right after.
function writeStderr(line: string): void {
  let bytes = encoder.encode(line);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
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
  const formatter = format === "json"
    ? formatJsonLine
    : getTextFormatter({ timestamp: "rfc3339", category: ".", value: "bare" });
  const sink: Sink = (record: LogRecord) => write(formatter(record));
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
