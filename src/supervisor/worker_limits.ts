import type { Admission, SharedLimits } from "../server/shared_limits.ts";
import type { SupervisorMessage, WorkerMessage } from "./worker_protocol.ts";

// Requests the supervisor has not answered yet; past this many, the worker
// stops accepting until answers come, so that a supervisor that falls
// behind holds clients in the backlog rather than in the worker.
const MAX_IN_FLIGHT = 256;

/** Options for {@linkcode WorkerLimits}. */
export interface WorkerLimitsOptions {
  /** The whole server's `--max-connections` (0: no limit). */
  maxConnections: number;
  /** The whole server's `--max-connections-per-ip` (0: no limit). */
  maxConnectionsPerIp: number;
  /** Writes a message to the supervisor. */
  send: (message: WorkerMessage) => void;
}

interface Request {
  kind: "acquire" | "address";
  resolve: (admission: Admission) => void;
  queued: boolean;
}

/**
 * A worker's side of the whole server's connection limits. The supervisor
 * leases it slots under `--max-connections`, which it fills and frees
 * without a message while it has some; a connection that finds none asks
 * for more. While the supervisor reclaims slots for a request that waits
 * (the server is full), the worker gives back each slot as its connection
 * closes, and accepts nothing more while one of its own connections waits,
 * so that its other clients wait in the backlog, as they would before a
 * single server at its limit. `--max-connections-per-ip` costs one request
 * per connection whose client has an address.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { WorkerMessage } from "./worker_protocol.ts";
 * import { WorkerLimits } from "./worker_limits.ts";
 *
 * const sent: WorkerMessage[] = [];
 * const limits = new WorkerLimits({
 *   maxConnections: 10,
 *   maxConnectionsPerIp: 0,
 *   send: (m) => void sent.push(m),
 * });
 * const first = limits.acquire("10.0.0.1");
 * limits.receive({ kind: "grant", id: 1, slots: 2 });
 * assertEquals(await first, "admitted");
 * // The second slot of the lease needs no message.
 * assertEquals(limits.acquire("10.0.0.1"), "admitted");
 * assertEquals(sent, [{ kind: "acquire", id: 1 }]);
 * ```
 */
export class WorkerLimits implements SharedLimits {
  readonly #max: number;
  readonly #perIp: number;
  readonly #send: (message: WorkerMessage) => void;
  readonly #pending = new Map<number, Request>();
  #nextId = 1;
  #queued = 0;
  #capacity: PromiseWithResolvers<void> | undefined;
  #closed = false;
  // Slots leased by the supervisor, and those taken by open connections or
  // held for a request in flight.
  #leased = 0;
  #inUse = 0;
  #reclaiming = false;

  /** @param options The limits, and how to reach the supervisor. */
  constructor(options: WorkerLimitsOptions) {
    this.#max = options.maxConnections;
    this.#perIp = options.maxConnectionsPerIp;
    this.#send = options.send;
  }

  /** A promise while a connection waits for a slot, or too many wait for an answer. */
  waitForCapacity(): Promise<void> | undefined {
    if (this.#hasCapacity()) return undefined;
    this.#capacity ??= Promise.withResolvers();
    return this.#capacity.promise;
  }

  /**
   * Takes a leased slot, or asks the supervisor for one, and for the
   * client's per-address slot when that limit applies.
   *
   * @param host The client's host, for the per-address limit.
   * @returns the answer, at once when no question was needed.
   */
  acquire(host: string | undefined): Admission | Promise<Admission> {
    const byHost = this.#perIp > 0 && host !== undefined;
    if (this.#max > 0 && this.#inUse >= this.#leased) {
      return this.#ask("acquire", byHost ? host : undefined);
    }
    if (this.#max > 0) this.#inUse++;
    if (!byHost) return "admitted";
    return this.#ask("address", host).then((admission) => {
      if (admission !== "admitted" && this.#max > 0) this.#free();
      return admission;
    });
  }

  /**
   * Asks the supervisor for the real client's per-address slot.
   *
   * @param host The client a PROXY header named.
   * @returns whether it may be served.
   */
  acquireAddress(host: string): boolean | Promise<boolean> {
    if (this.#perIp === 0) return true;
    return this.#ask("address", host).then((admission) =>
      admission === "admitted"
    );
  }

  /**
   * An admitted connection closed: its slot is free again, and the
   * supervisor hears of its client's per-address slot.
   *
   * @param host The host whose per-address slot it held, if any.
   */
  release(host: string | undefined): void {
    if (this.#closed) return;
    if (this.#perIp > 0 && host !== undefined) {
      this.#send({ kind: "release", host });
    }
    if (this.#max > 0) this.#free();
  }

  /**
   * Takes a message from the supervisor: an answer, or a change of mode.
   *
   * @param message What the supervisor sent.
   */
  receive(message: SupervisorMessage): void {
    switch (message.kind) {
      case "reclaim": {
        this.#reclaiming = true;
        const spare = this.#leased - this.#inUse;
        this.#leased -= spare;
        this.#send({ kind: "give", count: spare });
        return;
      }
      case "relax":
        this.#reclaiming = false;
        return;
      case "stop":
      case "ping":
      case "reload":
        return;
    }
    const request = this.#pending.get(message.id);
    if (request === undefined) return;
    if (message.kind === "wait") {
      if (!request.queued) this.#queued++;
      request.queued = true;
      return;
    }
    this.#pending.delete(message.id);
    if (request.queued) this.#queued--;
    if (message.kind === "grant" && request.kind === "acquire") {
      // Taken here, not when the answer's promise settles, so that no other
      // connection takes the slot in between.
      this.#leased += message.slots;
      this.#inUse++;
    }
    request.resolve(message.kind === "grant" ? "admitted" : "refused");
    this.#wake();
  }

  /** The supervisor is gone: every request still waiting is answered `closed`. */
  close(): void {
    this.#closed = true;
    for (const request of this.#pending.values()) request.resolve("closed");
    this.#pending.clear();
    this.#queued = 0;
    this.#wake();
  }

  #free(): void {
    this.#inUse--;
    if (!this.#reclaiming || this.#closed) return;
    this.#leased--;
    this.#send({ kind: "give", count: 1 });
  }

  #ask(
    kind: "acquire" | "address",
    host: string | undefined,
  ): Promise<Admission> {
    if (this.#closed) return Promise.resolve("closed");
    const id = this.#nextId++;
    const { promise, resolve } = Promise.withResolvers<Admission>();
    this.#pending.set(id, { kind, resolve, queued: false });
    this.#send(
      kind === "acquire"
        ? { kind, id, ...(host === undefined ? {} : { host }) }
        : { kind, id, host: host! },
    );
    return promise;
  }

  #hasCapacity(): boolean {
    return this.#queued === 0 && this.#pending.size < MAX_IN_FLIGHT;
  }

  #wake(): void {
    if (this.#capacity === undefined || !this.#hasCapacity()) return;
    this.#capacity.resolve();
    this.#capacity = undefined;
  }
}
