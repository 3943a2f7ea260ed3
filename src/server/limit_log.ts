import type { Logger } from "@logtape/logtape";
import { setLongTimeout } from "../common/long_timeout.ts";

/** Options for {@linkcode LimitLog}. */
export interface LimitLogOptions {
  /** Where the two lines go. */
  logger: Logger;
  /** The limit, for the lines. */
  limit: number;
  /**
   * How long the server must stay below the limit before the episode is
   * over and "accepting freely again" is logged.
   *
   * @default {5000}
   */
  quietMs?: number;
}

/**
 * The log of a connection limit, one episode at a time. At the limit a busy
 * server pauses and resumes with every connection that closes: thousands
 * of times a second under churn. Logging each would bury everything else,
 * so an episode logs one warning when it starts (naming the client with
 * the most connections, when the caller knows it) and one line when the
 * server has stayed below the limit for `quietMs`, with how often it
 * paused in between.
 *
 * @example One warning for many pauses
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { configureSync, getLogger, resetSync } from "@logtape/logtape";
 * import { LimitLog } from "./limit_log.ts";
 *
 * const lines: string[] = [];
 * configureSync({
 *   sinks: { mem: (r) => void lines.push(r.message.join("")) },
 *   loggers: [{ category: ["t"], sinks: ["mem"], lowestLevel: "info" }],
 * });
 * using log = new LimitLog({ logger: getLogger(["t"]), limit: 5, quietMs: 0 });
 * for (let i = 0; i < 100; i++) {
 *   log.reached("198.51.100.7 with 4 of 5");
 *   log.freed();
 * }
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * assertEquals(lines.length, 2);
 * resetSync();
 * ```
 */
export class LimitLog implements Disposable {
  readonly #logger: Logger;
  readonly #limit: number;
  readonly #quietMs: number;
  #pauses = 0;
  #since = 0;
  #cancel: (() => void) | undefined;

  /**
   * Creates the log of one limit.
   *
   * @param options The logger, the limit and the quiet period.
   */
  constructor(options: LimitLogOptions) {
    this.#logger = options.logger;
    this.#limit = options.limit;
    this.#quietMs = options.quietMs ?? 5000;
  }

  /** Pauses counted in the episode under way (0: none under way). */
  get pauses(): number {
    return this.#pauses;
  }

  /**
   * The server is at the limit and stops accepting.
   *
   * @param top Who holds the most connections, such as `198.51.100.7 with
   * 3,998 of 4,000`, when the caller knows.
   */
  reached(top?: string): void {
    this.#cancel?.();
    this.#cancel = undefined;
    if (this.#pauses++ > 0) return;
    this.#since = performance.now();
    const limit = this.#limit;
    if (top === undefined) {
      this.#logger.warning(
        "connection limit of {limit} reached; new clients wait in the backlog until connections close",
        { limit },
      );
    } else {
      this.#logger.warning(
        "connection limit of {limit} reached; new clients wait in the backlog until connections close; most connections: {top}",
        { limit, top },
      );
    }
  }

  /** A slot is free again, and the server accepts. */
  freed(): void {
    if (this.#pauses === 0 || this.#cancel) return;
    this.#cancel = setLongTimeout(() => this.#end(), this.#quietMs);
  }

  #end(): void {
    this.#cancel = undefined;
    const pauses = this.#pauses;
    const seconds = Math.round((performance.now() - this.#since) / 100) / 10;
    this.#pauses = 0;
    this.#logger.info(
      "accepting freely again: below the connection limit of {limit} for {quietSeconds} s, after reaching it {pauses} times in {seconds} s",
      {
        limit: this.#limit,
        quietSeconds: this.#quietMs / 1000,
        pauses,
        seconds,
      },
    );
  }

  /** Stops the timer of an episode under way, which then logs nothing more. */
  [Symbol.dispose](): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
