/**
 * The messages between the supervisor of `--workers` and its workers, one
 * per line. A worker writes its own on standard output, marked with a
 * prefix so that anything else printed there stays a log line; the
 * supervisor writes to the worker's standard input, which nothing else
 * writes to.
 *
 * `--max-connections` is shared out as leases: the supervisor grants a
 * worker slots, possibly several at once, which the worker fills and frees
 * without a word; only when it has none left does it ask again. When a
 * request finds none free, the supervisor reclaims what every worker holds
 * unused, and until no request waits any more, workers give back each slot
 * as its connection closes. A per-address limit is asked about for every
 * connection.
 *
 * The supervisor pings every worker once a second, and for the admin
 * endpoint: a worker's answer carries its counters, and the first of its
 * open connections when the ping asks for them. A worker that stops
 * answering is reported unready and, after a grace period, replaced.
 *
 * @module
 */

import type { StatsSnapshot } from "../server/stats.ts";

const PREFIX = "upcase-worker ";

/**
 * A worker's statistics as its answer to a ping carries them: the open
 * connections are listed (`active`) only when the ping asked for them, and
 * then only the first few; `open` always counts them all.
 */
export type WorkerStats = Omit<StatsSnapshot, "active"> & {
  active?: StatsSnapshot["active"];
};

/** What a worker tells its supervisor. */
export type WorkerMessage =
  /** It serves. */
  | { kind: "ready" }
  /** The answer to ping `seq`, with the worker's statistics. */
  | { kind: "pong"; seq: number; stats: WorkerStats }
  /**
   * A connection needs a slot under `--max-connections`, and the worker
   * has none left; with `host`, also that client's per-address slot.
   */
  | { kind: "acquire"; id: number; host?: string }
  /** A connection asks for its client's per-address slot only. */
  | { kind: "address"; id: number; host: string }
  /** A connection closed that held this client's per-address slot. */
  | { kind: "release"; host: string }
  /** Slots handed back, in answer to `reclaim` (0 included) or freed while reclaiming. */
  | { kind: "give"; count: number };

/** What the supervisor tells a worker. */
export type SupervisorMessage =
  /**
   * Drain, as on a signal; `reason` is the signal the supervisor received,
   * `failure` when it gives up on a worker that cannot start, or `kill`
   * just before it kills the workers.
   */
  | { kind: "stop"; reason: string }
  /**
   * Answer with `pong` and the statistics, listing up to `connections` of
   * the open connections.
   */
  | { kind: "ping"; seq: number; connections: number }
  /** Reload the TLS certificate and key, as on SIGHUP. */
  | { kind: "reload" }
  /** Request `id` is served, and the worker holds `slots` more slots for it and later ones. */
  | { kind: "grant"; id: number; slots: number }
  /**
   * Request `id` is refused (its client is at the per-address limit), or
   * waits because the server is full; `grant` or `refuse` follows `wait`.
   */
  | { kind: "refuse" | "wait"; id: number }
  /** Give back every unused slot now, and each one freed until `relax`. */
  | { kind: "reclaim" }
  /** No request waits any more: keep freed slots again. */
  | { kind: "relax" };

// Hosts are IP addresses, from the kernel or a PROXY header the parser
// checked, so they never contain a space; "-" stands for none.
function optionalHost(field: string | undefined): { host?: string } {
  return field === undefined || field === "-" ? {} : { host: field };
}

function positive(field: string | undefined): number | undefined {
  const n = Number(field);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function count(field: string | undefined): number | undefined {
  const n = Number(field);
  return field !== "" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

// The worker is this same program, so the statistics are trusted as its
// JSON says; only a line that is not one is refused.
function parseStats(json: string): WorkerStats | undefined {
  try {
    const stats: unknown = JSON.parse(json);
    return typeof stats === "object" && stats !== null &&
        typeof (stats as WorkerStats).open === "number"
      ? stats as WorkerStats
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Encodes a worker's message as one line, without the newline.
 *
 * @param message What to tell the supervisor.
 * @returns the line.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeWorkerMessage, parseWorkerMessage } from "./worker_protocol.ts";
 *
 * const line = encodeWorkerMessage({ kind: "acquire", id: 7, host: "::1" });
 * assertEquals(parseWorkerMessage(line), { kind: "acquire", id: 7, host: "::1" });
 * assertEquals(parseWorkerMessage("a log line"), undefined);
 * ```
 */
export function encodeWorkerMessage(message: WorkerMessage): string {
  switch (message.kind) {
    case "ready":
      return `${PREFIX}ready`;
    case "pong":
      // JSON.stringify writes no line break, so the line stays one.
      return `${PREFIX}pong ${message.seq} ${JSON.stringify(message.stats)}`;
    case "acquire":
    case "address":
      return `${PREFIX}${message.kind} ${message.id} ${message.host ?? "-"}`;
    case "release":
      return `${PREFIX}release ${message.host}`;
    case "give":
      return `${PREFIX}give ${message.count}`;
  }
}

/**
 * Reads a worker's message out of a line of its standard output.
 *
 * @param line One line, without the newline.
 * @returns the message, or undefined for any other line.
 */
export function parseWorkerMessage(line: string): WorkerMessage | undefined {
  if (!line.startsWith(PREFIX)) return undefined;
  const [kind, first, second] = line.slice(PREFIX.length).split(" ", 3);
  switch (kind) {
    case "ready":
      return first === undefined ? { kind } : undefined;
    case "pong": {
      const seq = positive(first);
      if (seq === undefined) return undefined;
      // The rest of the line, spaces and all.
      const at = PREFIX.length + kind.length + 1 + first!.length + 1;
      const stats = parseStats(line.slice(at));
      return stats === undefined ? undefined : { kind, seq, stats };
    }
    case "release":
      return first && first !== "-" ? { kind, host: first } : undefined;
    case "give": {
      const count = Number(first);
      return Number.isSafeInteger(count) && count >= 0
        ? { kind, count }
        : undefined;
    }
    case "acquire":
    case "address": {
      const id = positive(first);
      if (id === undefined) return undefined;
      if (kind === "acquire") return { kind, id, ...optionalHost(second) };
      return second && second !== "-" ? { kind, id, host: second } : undefined;
    }
  }
  return undefined;
}

/**
 * Encodes the supervisor's message to a worker as one line, without the
 * newline.
 *
 * @param message What to tell the worker.
 * @returns the line.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeSupervisorMessage, parseSupervisorMessage } from "./worker_protocol.ts";
 *
 * const line = encodeSupervisorMessage({ kind: "stop", reason: "SIGTERM" });
 * assertEquals(parseSupervisorMessage(line), { kind: "stop", reason: "SIGTERM" });
 * assertEquals(parseSupervisorMessage("grant 3 40"), { kind: "grant", id: 3, slots: 40 });
 * ```
 */
export function encodeSupervisorMessage(message: SupervisorMessage): string {
  switch (message.kind) {
    case "stop":
      return `stop ${message.reason}`;
    case "ping":
      return `ping ${message.seq} ${message.connections}`;
    case "grant":
      return `grant ${message.id} ${message.slots}`;
    case "refuse":
    case "wait":
      return `${message.kind} ${message.id}`;
    case "reclaim":
    case "relax":
    case "reload":
      return message.kind;
  }
}

/**
 * Reads the supervisor's message out of a line of a worker's standard
 * input.
 *
 * @param line One line, without the newline.
 * @returns the message, or undefined for a line that is none.
 */
export function parseSupervisorMessage(
  line: string,
): SupervisorMessage | undefined {
  const [kind, first, second] = line.split(" ");
  switch (kind) {
    case "stop":
      return first ? { kind, reason: first } : undefined;
    case "ping": {
      const [seq, connections] = [positive(first), count(second)];
      return seq !== undefined && connections !== undefined
        ? { kind, seq, connections }
        : undefined;
    }
    case "reclaim":
    case "relax":
    case "reload":
      return { kind };
    case "grant": {
      const [id, slots] = [positive(first), Number(second)];
      return id !== undefined && Number.isSafeInteger(slots) && slots >= 0
        ? { kind, id, slots }
        : undefined;
    }
    case "refuse":
    case "wait": {
      const id = positive(first);
      return id === undefined ? undefined : { kind, id };
    }
  }
  return undefined;
}
