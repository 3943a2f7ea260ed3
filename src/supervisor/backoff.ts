/** Options for {@linkcode RestartBackoff}. */
export interface RestartBackoffOptions {
  /**
   * The first delay, in milliseconds.
   *
   * @default {100}
   */
  initial?: number;
  /**
   * The longest delay, in milliseconds.
   *
   * @default {10000}
   */
  max?: number;
  /**
   * A worker that ran at least this long, in milliseconds, counts as
   * healthy, and its next crash starts again from `initial`.
   *
   * @default {30000}
   */
  healthyAfter?: number;
}

/**
 * How long the supervisor waits before it restarts a crashed worker: the
 * delay doubles with each crash in a row, so that a worker that cannot start
 * does not spin the CPU, and resets once a worker has stayed up.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { RestartBackoff } from "./backoff.ts";
 *
 * const backoff = new RestartBackoff({ initial: 100, max: 350 });
 * assertEquals([0, 0, 0, 0].map((up) => backoff.next(up)), [100, 200, 350, 350]);
 * assertEquals(backoff.next(60_000), 100);
 * ```
 */
export class RestartBackoff {
  #initial: number;
  #max: number;
  #healthyAfter: number;
  #delay = 0;

  /** @param options The first and longest delay, and when a worker counts as healthy. */
  constructor(options: RestartBackoffOptions = {}) {
    this.#initial = options.initial ?? 100;
    this.#max = options.max ?? 10_000;
    this.#healthyAfter = options.healthyAfter ?? 30_000;
  }

  /**
   * The delay before the next restart.
   *
   * @param uptime How long the crashed worker ran, in milliseconds.
   * @returns the delay in milliseconds.
   */
  next(uptime: number): number {
    this.#delay = uptime >= this.#healthyAfter || this.#delay === 0
      ? this.#initial
      : Math.min(this.#delay * 2, this.#max);
    return this.#delay;
  }
}
