/**
 * await serveOn() with `sharedLimits`, as a worker of `--workers` runs it, against
 * limits the test answers by hand.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { serveOn } from "../_transport.ts";
import type {
  Admission,
  SharedLimits,
} from "../../src/server/shared_limits.ts";
import { finish, roundTrip } from "../_admin.ts";
import { assertAccountedFor } from "../_helpers.ts";

/** Limits that hold every request until the test answers it. */
class ManualLimits implements SharedLimits {
  readonly asked: PromiseWithResolvers<Admission>[] = [];
  readonly released: (string | undefined)[] = [];
  #onAsk: (() => void) | undefined;

  waitForCapacity(): undefined {
    return undefined;
  }
  acquire(_host: string | undefined): Promise<Admission> {
    const request = Promise.withResolvers<Admission>();
    this.asked.push(request);
    this.#onAsk?.();
    return request.promise;
  }
  acquireAddress(_host: string): boolean {
    return true;
  }
  release(host: string | undefined): void {
    this.released.push(host);
  }
  /** Resolves once `n` requests have come in. */
  asks(n: number): Promise<void> {
    if (this.asked.length >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#onAsk = () => {
      if (this.asked.length >= n) resolve();
    };
    return promise;
  }
}

async function start(limits: ManualLimits) {
  return await serveOn({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 1,
    maxConnectionsPerIp: 1,
    sharedLimits: limits,
    onListen() {},
  });
}

Deno.test("serve() with sharedLimits holds a connection unread until it is admitted, and gives its slot back", async () => {
  const limits = new ManualLimits();
  await using server = await start(limits);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  const echo = roundTrip(conn, "held");
  await limits.asks(1);
  const held = server.stats();
  assertEquals([held.waiting, held.active.length, held.accepted], [1, 0, 1]);
  assertAccountedFor(held);
  limits.asked[0]!.resolve("admitted");
  assertEquals(await echo, "HELD");
  assertEquals(server.stats().waiting, 0);
  await finish(conn);
  await server.shutdown();
  assertEquals(limits.released, ["127.0.0.1"]);
});

Deno.test("serve() with sharedLimits closes a refused connection, and counts it", async () => {
  const limits = new ManualLimits();
  await using server = await start(limits);
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  await limits.asks(1);
  limits.asked[0]!.resolve("refused");
  assertEquals(await conn.read(new Uint8Array(1)), null);
  await server.shutdown();
  const stats = server.stats();
  assertEquals([stats.refused, limits.released.length], [1, 0]);
  assertAccountedFor(stats);
});

Deno.test("serve() with sharedLimits closes waiting connections at shutdown, and returns a slot granted after", async () => {
  const limits = new ManualLimits();
  await using server = await start(limits);
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  await limits.asks(1);
  const summary = await server.shutdown();
  assertEquals(summary, { drained: 0, cut: 0 });
  // Like a client in the backlog when the listener closes: never served.
  assertEquals(await conn.read(new Uint8Array(1)).catch(() => null), null);
  const stats = server.stats();
  assertEquals([stats.waiting, stats.closed.shutdown], [0, 1]);
  assertAccountedFor(stats);
  limits.asked[0]!.resolve("admitted");
  await Promise.resolve();
  assertEquals(limits.released, ["127.0.0.1"]);
});
