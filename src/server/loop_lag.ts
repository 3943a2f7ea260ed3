import type { Logger } from "@logtape/logtape";

/**
 * Lag above which the event loop counts as behind: every connection then
 * waits this long for its next read or write. It is well above a
 * garbage-collection pause of a busy server (a few ms to a few tens of ms)
 * and where people at a terminal start to notice an echo come back late.
 */
export const LAG_THRESHOLD_MS = 100;

/** Options for {@linkcode LoopLag}. */
export interface LoopLagOptions {
  /** Where the episode's two lines go. */
  logger: Logger;
  /**
   * The clock, in milliseconds; replaceable for tests.
   *
   * @default {() => performance.now()}
   */
  now?: () => number;
  /**
   * Calls `tick` every `ms`, each time `ms` after the last call began, and
   * returns a function that stops it; replaceable for tests. By default an
   * unref'd `setInterval`, which never keeps the process alive.
   */
  every?: (tick: () => void, ms: number) => () => void;
}

/** A timer every 100 ms: ten wake-ups a second, nothing per connection. */
const INTERVAL_MS = 100;
/** How long the lag must stay above the threshold before it is logged. */
const SUSTAIN_MS = 3000;
/** How long it must stay below again before the recovery is logged. */
const RECOVER_MS = 5000;
/**
 * The gauge's window: one slot per second, 11 of them, so that a lag stays
 * on the gauge for at least 10 s, whatever moment in its second it came.
 */
const WINDOW_SLOTS = 11;

interface Episode {
  since: number;
  worst: number;
  warned: boolean;
  belowSince: number | undefined;
}

// An interval rather than a timeout armed again on each tick: Deno then
// starts the next wait from when the tick ran, as a timeout would, for
// about a quarter less CPU (measured in a bare script, ten ticks a second:
// 0.27% against 0.37% of a core).
function unrefInterval(tick: () => void, ms: number): () => void {
  const timer = setInterval(tick, ms);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

function round(ms: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(ms * scale) / scale;
}

/**
 * Measures how late the event loop runs: a timer every 100 ms compares
 * when it fired with when it was due. Everything on one thread waits
 * behind a busy or stalled loop, so this is how long any connection waits
 * to be served. {@linkcode LoopLag.recentSeconds} is the worst lag of the
 * last 10 s or a little more, so that a scrape every 10 s misses no stall, and
 * {@linkcode LoopLag.maxSeconds} the worst since it started.
 *
 * A lag above {@linkcode LAG_THRESHOLD_MS} on every tick for 3 s logs one
 * warning, and once the lag has then stayed below it for 5 s, one line
 * that it is back to normal: one pair per episode, however long, like the
 * connection limit's log. A single stall of 3 s or more is such an episode
 * by itself; a shorter one shows on the gauge only.
 *
 * @example A stall shows, and its episode logs two lines
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { configureSync, getLogger, resetSync } from "@logtape/logtape";
 * import { LoopLag } from "./loop_lag.ts";
 *
 * const lines: string[] = [];
 * configureSync({
 *   sinks: { mem: (r) => void lines.push(r.message.join("")) },
 *   loggers: [{ category: ["t"], sinks: ["mem"], lowestLevel: "info" }],
 * });
 * let now = 0;
 * let tick = () => {};
 * using lag = new LoopLag({
 *   logger: getLogger(["t"]),
 *   now: () => now,
 *   every: (fn) => (tick = fn, () => {}),
 * });
 * lag.start();
 * now = 4100; // due at 100, the loop was stuck for 4 s
 * tick();
 * assertEquals([lag.recentSeconds, lag.maxSeconds], [4, 4]);
 * for (let i = 0; i < 60; i++) now += 100, tick();
 * assertEquals(lines.length, 2);
 * resetSync();
 * ```
 */
export class LoopLag implements Disposable {
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #every: (tick: () => void, ms: number) => () => void;
  // The worst lag in each of the last seconds, and which second it was.
  readonly #slotLag = new Float64Array(WINDOW_SLOTS);
  readonly #slotSecond = new Float64Array(WINDOW_SLOTS).fill(-Infinity);
  #max = 0;
  #episode: Episode | undefined;
  #cancel: (() => void) | undefined;

  /**
   * Creates the gauge; call {@linkcode LoopLag.start} to run it.
   *
   * @param options The logger, and the clock and timer for tests.
   */
  constructor(options: LoopLagOptions) {
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#every = options.every ?? unrefInterval;
  }

  /** The worst lag of the last 10 to 11 s, in seconds. */
  get recentSeconds(): number {
    const second = Math.floor(this.#now() / 1000);
    let worst = 0;
    for (let i = 0; i < WINDOW_SLOTS; i++) {
      if (second - this.#slotSecond[i]! < WINDOW_SLOTS) {
        worst = Math.max(worst, this.#slotLag[i]!);
      }
    }
    return round(worst / 1000, 6);
  }

  /** The worst lag since it started, in seconds. */
  get maxSeconds(): number {
    return round(this.#max / 1000, 6);
  }

  /** Starts measuring; a second call does nothing. */
  start(): void {
    if (this.#cancel) return;
    let last = this.#now();
    this.#cancel = this.#every(() => {
      const now = this.#now();
      this.#observe(Math.max(0, now - last - INTERVAL_MS));
      last = now;
    }, INTERVAL_MS);
  }

  /** Stops measuring; an episode under way logs nothing more. */
  [Symbol.dispose](): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #observe(lag: number): void {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    const slot = second % WINDOW_SLOTS;
    if (this.#slotSecond[slot] !== second) {
      this.#slotSecond[slot] = second;
      this.#slotLag[slot] = 0;
    }
    this.#slotLag[slot] = Math.max(this.#slotLag[slot]!, lag);
    this.#max = Math.max(this.#max, lag);
    if (lag > LAG_THRESHOLD_MS) this.#behind(now, lag);
    else if (this.#episode) this.#caughtUp(now);
  }

  // The episode starts when the first late tick was due: from then on the
  // loop has been behind.
  #behind(now: number, lag: number): void {
    const episode = this.#episode ??= {
      since: now - lag,
      worst: 0,
      warned: false,
      belowSince: undefined,
    };
    episode.worst = Math.max(episode.worst, lag);
    episode.belowSince = undefined;
    if (episode.warned || now - episode.since < SUSTAIN_MS) return;
    episode.warned = true;
    this.#logger.warning(
      "event loop lag above {thresholdMs} ms for {seconds} s, up to {lagMs} ms: every connection is served that late; the process is short of CPU or was stopped",
      {
        thresholdMs: LAG_THRESHOLD_MS,
        seconds: round((now - episode.since) / 1000, 1),
        lagMs: Math.round(episode.worst),
      },
    );
  }

  #caughtUp(now: number): void {
    const episode = this.#episode!;
    // A short stall is no episode: the gauge shows it, the log does not.
    if (!episode.warned) return void (this.#episode = undefined);
    episode.belowSince ??= now;
    if (now - episode.belowSince < RECOVER_MS) return;
    this.#episode = undefined;
    this.#logger.info(
      "event loop lag back to normal after {seconds} s: below {thresholdMs} ms for {quietSeconds} s; the worst was {lagMs} ms",
      {
        seconds: round((episode.belowSince - episode.since) / 1000, 1),
        thresholdMs: LAG_THRESHOLD_MS,
        quietSeconds: RECOVER_MS / 1000,
        lagMs: Math.round(episode.worst),
      },
    );
  }
}
