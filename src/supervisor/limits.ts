import { getLogger } from "@logtape/logtape";
import { AddressLimit } from "../server/address_limit.ts";
import { LimitLog } from "../server/limit_log.ts";
import type { SupervisorMessage, WorkerMessage } from "./worker_protocol.ts";

const log = getLogger(["upcase", "supervisor"]);

/** Options for {@linkcode LimitBroker}. */
export interface LimitBrokerOptions {
  /** The whole server's `--max-connections` (0: no limit). */
  maxConnections: number;
  /** The whole server's `--max-connections-per-ip` (0: no limit). */
  maxConnectionsPerIp: number;
  /** How many workers share the slots, for the size of a lease. */
  workers: number;
  /** Writes a message to worker `worker`. */
  send: (worker: number, message: SupervisorMessage) => void;
}

interface Waiter {
  worker: number;
  id: number;
  host: string | undefined;
}

// What one worker holds, to be given back if it dies.
interface Holdings {
  slots: number;
  addresses: Map<string, number>;
}

/**
 * The supervisor's side of the whole server's connection limits with
 * `--workers`, so that `--max-connections` and `--max-connections-per-ip`
 * count across all workers, exactly.
 *
 * Slots under `--max-connections` go out as leases (see worker_protocol.ts):
 * a worker that asks gets a share of the free ones, at least one, and uses
 * them without asking again. A request that finds none free waits in one
 * queue, first come first served whichever worker holds the client, and
 * the broker reclaims every worker's unused slots; until the queue is
 * empty, each slot freed anywhere comes back and goes to the longest
 * waiting request. The per-address limit is checked for every connection.
 * A worker that dies gives back everything it held.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { LimitBroker } from "./limits.ts";
 *
 * const sent: string[] = [];
 * using broker = new LimitBroker({
 *   maxConnections: 1,
 *   maxConnectionsPerIp: 0,
 *   workers: 2,
 *   send: (worker, m) => void sent.push(`w${worker} ${m.kind}`),
 * });
 * broker.workerStarted(1);
 * broker.workerStarted(2);
 * broker.receive(1, { kind: "acquire", id: 1 });
 * broker.receive(2, { kind: "acquire", id: 1 });
 * assertEquals(broker.waiting, 1);
 * broker.receive(1, { kind: "give", count: 0 });
 * broker.receive(2, { kind: "give", count: 0 });
 * broker.receive(1, { kind: "give", count: 1 });
 * assertEquals(sent, [
 *   "w1 grant", "w2 wait", "w1 reclaim", "w2 reclaim", "w2 grant", "w1 relax", "w2 relax",
 * ]);
 * ```
 */
export class LimitBroker {
  readonly #max: number;
  readonly #workers: number;
  readonly #send: LimitBrokerOptions["send"];
  readonly #addresses: AddressLimit;
  readonly #holdings = new Map<number, Holdings>();
  // Workers asked to reclaim that have not answered yet.
  readonly #unanswered = new Set<number>();
  #queue: Waiter[] = [];
  #free: number;
  #reclaiming = false;
  #full = false;
  readonly #limitLog: LimitLog;

  /** @param options The limits, the workers, and how to answer them. */
  constructor(options: LimitBrokerOptions) {
    this.#max = options.maxConnections;
    this.#free = options.maxConnections;
    this.#workers = options.workers;
    this.#addresses = new AddressLimit(options.maxConnectionsPerIp);
    this.#send = options.send;
    this.#limitLog = new LimitLog({
      logger: log,
      limit: options.maxConnections,
    });
  }

  /** Ends the limit's log episode, if one is under way, without a line. */
  [Symbol.dispose](): void {
    this.#limitLog[Symbol.dispose]();
  }

  /** Connections accepted by a worker and waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Handles a worker's message.
   *
   * @param worker The worker's id.
   * @param message What it sent.
   */
  receive(worker: number, message: WorkerMessage): void {
    switch (message.kind) {
      case "acquire":
        if (this.#queue.length === 0 && (this.#max === 0 || this.#free > 0)) {
          this.#admit({ worker, id: message.id, host: message.host });
          return;
        }
        this.#queue.push({ worker, id: message.id, host: message.host });
        this.#send(worker, { kind: "wait", id: message.id });
        this.#reclaim();
        break;
      case "address": {
        const ok = this.#takeAddress(worker, message.host);
        const id = message.id;
        this.#send(
          worker,
          ok ? { kind: "grant", id, slots: 0 } : {
            kind: "refuse",
            id,
          },
        );
        return;
      }
      case "release":
        this.#releaseAddress(worker, message.host);
        return;
      case "give": {
        const held = this.#holdingsOf(worker);
        const count = Math.min(message.count, held.slots);
        held.slots -= count;
        this.#free += count;
        this.#unanswered.delete(worker);
        break;
      }
      case "ready":
        return;
    }
    this.#serveQueue();
  }

  /**
   * Counts a worker that has just started in, and tells it to give back
   * freed slots if a request is waiting.
   *
   * @param worker The worker's id.
   */
  workerStarted(worker: number): void {
    this.#holdingsOf(worker);
    if (!this.#reclaiming) return;
    this.#unanswered.add(worker);
    this.#send(worker, { kind: "reclaim" });
  }

  /**
   * Gives back everything a worker that exited held, and drops its waiting
   * requests.
   *
   * @param worker The worker's id.
   */
  workerGone(worker: number): void {
    const held = this.#holdings.get(worker);
    this.#holdings.delete(worker);
    this.#unanswered.delete(worker);
    this.#queue = this.#queue.filter((w) => w.worker !== worker);
    if (held !== undefined) {
      this.#free += held.slots;
      for (const [host, n] of held.addresses) {
        for (let i = 0; i < n; i++) this.#addresses.release(host);
      }
    }
    this.#serveQueue();
  }

  #holdingsOf(worker: number): Holdings {
    let held = this.#holdings.get(worker);
    if (held === undefined) {
      held = { slots: 0, addresses: new Map() };
      this.#holdings.set(worker, held);
    }
    return held;
  }

  #takeAddress(worker: number, host: string): boolean {
    if (!this.#addresses.acquire(host)) return false;
    const { addresses } = this.#holdingsOf(worker);
    addresses.set(host, (addresses.get(host) ?? 0) + 1);
    return true;
  }

  #releaseAddress(worker: number, host: string): void {
    const addresses = this.#holdings.get(worker)?.addresses;
    const n = addresses?.get(host) ?? 0;
    if (n === 0) return;
    this.#addresses.release(host);
    if (n > 1) addresses!.set(host, n - 1);
    else addresses!.delete(host);
  }

  #admit({ worker, id, host }: Waiter): void {
    if (host !== undefined && !this.#takeAddress(worker, host)) {
      this.#send(worker, { kind: "refuse", id });
      return;
    }
    // A share of what is free, so that a busy worker rarely asks again,
    // while enough stays free for the others; one at a time while slots
    // are being reclaimed.
    const slots = this.#max === 0
      ? 0
      : this.#reclaiming
      ? 1
      : Math.max(1, Math.floor(this.#free / (2 * this.#workers)));
    this.#free -= slots;
    this.#holdingsOf(worker).slots += slots;
    this.#send(worker, { kind: "grant", id, slots });
  }

  #reclaim(): void {
    if (this.#reclaiming) return;
    this.#reclaiming = true;
    for (const worker of this.#holdings.keys()) {
      this.#unanswered.add(worker);
      this.#send(worker, { kind: "reclaim" });
    }
  }

  #serveQueue(): void {
    let next = 0;
    while (next < this.#queue.length && this.#free > 0) {
      this.#admit(this.#queue[next++]!);
    }
    if (next > 0) this.#queue = this.#queue.slice(next);
    if (this.#queue.length > 0) {
      // Full for real once every worker has given back what it could.
      if (this.#unanswered.size === 0 && !this.#full) {
        this.#full = true;
        this.#limitLog.reached();
      }
      return;
    }
    if (!this.#reclaiming) return;
    this.#reclaiming = false;
    this.#unanswered.clear();
    for (const worker of this.#holdings.keys()) {
      this.#send(worker, { kind: "relax" });
    }
    if (this.#full) {
      this.#full = false;
      this.#limitLog.freed();
    }
  }
}
