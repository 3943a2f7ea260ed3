/** How a worker's answers have changed, as {@linkcode Heartbeat} reports it. */
export type HeartbeatChange = "silent" | "answering" | "hung";

/** Options for {@linkcode Heartbeat}. */
export interface HeartbeatOptions {
  /** Sends worker `id` a ping, asking for up to `connections` connections. */
  ping: (id: number, seq: number, connections: number) => void;
  /**
   * Hears that a worker has missed `silentAfter` beats in a row
   * (`silent`), answers again after that (`answering`), or has missed
   * `hungAfter` (`hung`: replace it).
   */
  onChange: (id: number, change: HeartbeatChange) => void;
  /**
   * Milliseconds between beats.
   *
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * Beats in a row without an answer before a worker counts as silent.
   *
   * @default {3}
   */
  silentAfter?: number;
  /**
   * Beats in a row without an answer before a worker counts as hung.
   *
   * @default {10}
   */
  hungAfter?: number;
  /**
   * The longest {@linkcode Heartbeat.collect} waits for answers, in
   * milliseconds.
   *
   * @default {250}
   */
  waitMs?: number;
  /**
   * How long a collection's answers also serve later requests, in
   * milliseconds, so that a client that asks in a loop costs the workers
   * at most a few collections a second.
   *
   * @default {100}
   */
  reuseMs?: number;
}

interface Member {
  answered: boolean;
  missed: number;
  silent: boolean;
}

interface Round {
  seq: number;
  connections: number;
  startedAt: number;
  waiting: Set<number>;
  done: PromiseWithResolvers<void>;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The supervisor's pings to its workers, over the pipe it already holds.
 * Every beat pings each worker, and a worker that has answered nothing for
 * a few beats in a row is reported: silent (the server is then not ready,
 * since the kernel still hands that worker its share of new clients), then
 * hung. Counting beats rather than time keeps a supervisor that was itself
 * stopped for a while from blaming its workers for it.
 *
 * {@linkcode Heartbeat.collect} pings every worker for a request to the
 * admin endpoint and waits, briefly, for the answers; requests that come
 * while one collection runs share it.
 *
 * @example
 * ```ts
 * import { assertStrictEquals } from "@std/assert";
 * import { Heartbeat } from "./heartbeat.ts";
 *
 * const answers: [number, number][] = [];
 * using heartbeat = new Heartbeat({
 *   ping: (id, seq) => void answers.push([id, seq]),
 *   onChange() {},
 * });
 * heartbeat.add(1);
 * const collected = heartbeat.collect(0);
 * assertStrictEquals(heartbeat.collect(0), collected); // shared
 * for (const [id, seq] of answers) heartbeat.answered(id, seq);
 * await collected;
 * ```
 */
export class Heartbeat {
  readonly #options: Required<HeartbeatOptions>;
  readonly #members = new Map<number, Member>();
  readonly #rounds = new Set<Round>();
  #lastRound: { startedAt: number; connections: number } | undefined;
  #seq = 0;
  #interval: ReturnType<typeof setInterval> | undefined;

  /** @param options How to ping, who hears of changes, and the timings. */
  constructor(options: HeartbeatOptions) {
    this.#options = {
      intervalMs: 1000,
      silentAfter: 3,
      hungAfter: 10,
      waitMs: 250,
      reuseMs: 100,
      ...options,
    };
  }

  /** Starts beating. */
  start(): void {
    this.#interval ??= setInterval(
      () => this.#beat(),
      this.#options.intervalMs,
    );
  }

  /** Stops beating, and ends the collections that wait. */
  [Symbol.dispose](): void {
    clearInterval(this.#interval);
    for (const round of this.#rounds) this.#finish(round);
  }

  /**
   * Starts pinging a worker, once it serves.
   *
   * @param id The worker.
   */
  add(id: number): void {
    this.#members.set(id, { answered: true, missed: 0, silent: false });
  }

  /**
   * Stops pinging a worker that has exited.
   *
   * @param id The worker.
   */
  remove(id: number): void {
    this.#members.delete(id);
    for (const round of this.#rounds) this.#received(round, id);
  }

  /**
   * Takes a worker's answer to ping `seq`, which answers every earlier ping
   * too: a worker answers in order.
   *
   * @param id The worker.
   * @param seq The ping it answered.
   */
  answered(id: number, seq: number): void {
    const member = this.#members.get(id);
    if (member === undefined) return;
    member.answered = true;
    member.missed = 0;
    if (member.silent) {
      member.silent = false;
      this.#options.onChange(id, "answering");
    }
    for (const round of this.#rounds) {
      if (round.seq <= seq) this.#received(round, id);
    }
  }

  /** The workers that are pinged, and whether each is silent now. */
  get members(): { id: number; silent: boolean }[] {
    return [...this.#members].map(([id, { silent }]) => ({ id, silent }));
  }

  /**
   * Pings every worker and settles once each one that is not silent has
   * answered, or after `waitMs`. A collection that is running, or that
   * started within `reuseMs`, and asked for as many connections, serves
   * instead.
   *
   * @param connections How many open connections each worker should list.
   * @returns a promise that settles when the answers are in.
   */
  collect(connections: number): Promise<void> {
    const last = this.#lastRound;
    if (
      last !== undefined && last.connections >= connections &&
      performance.now() - last.startedAt <= this.#options.reuseMs
    ) {
      return Promise.resolve();
    }
    for (const round of this.#rounds) {
      if (round.connections >= connections) return round.done.promise;
    }
    return this.#collect(connections);
  }

  #collect(connections: number): Promise<void> {
    const seq = this.#ping(connections);
    const waiting = new Set(
      [...this.#members].filter(([, m]) => !m.silent).map(([id]) => id),
    );
    const round: Round = {
      seq,
      connections,
      startedAt: performance.now(),
      waiting,
      done: Promise.withResolvers(),
      timer: setTimeout(() => this.#finish(round), this.#options.waitMs),
    };
    this.#rounds.add(round);
    if (waiting.size === 0) this.#finish(round);
    return round.done.promise;
  }

  #ping(connections: number): number {
    const seq = ++this.#seq;
    for (const id of this.#members.keys()) {
      this.#options.ping(id, seq, connections);
    }
    return seq;
  }

  #received(round: Round, id: number): void {
    round.waiting.delete(id);
    if (round.waiting.size === 0) this.#finish(round);
  }

  #finish(round: Round): void {
    if (!this.#rounds.delete(round)) return;
    clearTimeout(round.timer);
    this.#lastRound = round;
    round.done.resolve();
  }

  #beat(): void {
    const { silentAfter, hungAfter, onChange } = this.#options;
    for (const [id, member] of this.#members) {
      if (member.answered) {
        member.answered = false;
        continue;
      }
      member.missed++;
      if (member.missed === silentAfter) {
        member.silent = true;
        onChange(id, "silent");
      }
      if (member.missed === hungAfter) onChange(id, "hung");
    }
    this.#ping(0);
  }
}
