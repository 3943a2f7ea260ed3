/**
 * Counts open connections per client address and refuses one more from an
 * address already at its limit.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AddressLimit } from "./address_limit.ts";
 *
 * const limit = new AddressLimit(1);
 * assertEquals(limit.acquire("10.0.0.1"), true);
 * assertEquals(limit.acquire("10.0.0.1"), false);
 * limit.release("10.0.0.1");
 * assertEquals(limit.acquire("10.0.0.1"), true);
 * ```
 */
export class AddressLimit {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /**
   * @param max Connections allowed per address; 0 means no limit.
   */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Takes a slot for `address`.
   *
   * @returns false when the address is at its limit; nothing was taken.
   */
  acquire(address: string): boolean {
    if (this.#max === 0) return true;
    const open = this.#open.get(address) ?? 0;
    if (open >= this.#max) return false;
    this.#open.set(address, open + 1);
    return true;
  }

  /** Gives back a slot that {@linkcode AddressLimit.acquire} took. */
  release(address: string): void {
    if (this.#max === 0) return;
    const open = (this.#open.get(address) ?? 1) - 1;
    if (open > 0) this.#open.set(address, open);
    else this.#open.delete(address);
  }
}
