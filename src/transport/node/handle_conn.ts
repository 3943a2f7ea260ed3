import type { Conn } from "../types.ts";
import { ChunkQueue } from "./chunk_queue.ts";
import { connectionClosedError } from "./closed_error.ts";
import {
  engineError,
  lastReadResult,
  lastWriteWasAsync,
  type RawStream,
  UV_EOF,
} from "./engine.ts";

// How much a connection queues, of what arrived while no read waited,
// before it stops reading: a client that the server does not read from is
// not read from, and the kernel's buffers hold the rest.
const HIGH_WATER = 64 * 1024;
// Where reads land while no read waits, before they are copied into the
// queue; shared, since each read is copied out at once.
const scratch = new Uint8Array(HIGH_WATER);

/**
 * A plain TCP or Unix connection on the `node:net` engine, at its handle
 * ({@linkcode RawStream}), with no `net.Socket` over it.
 *
 * The engine reads on readiness, whether or not a read waits, which keeps
 * it fair at saturation; each wakeup it reads until the socket is empty.
 * Those reads land straight in the buffer of the read that waits (the
 * server's pooled buffers in the SIMD kernel's memory), each after the
 * last, until it is full; writes go straight from the server's buffer.
 * Bytes that arrive while no read waits are copied to a queue, and the
 * handle stops reading once that holds `HIGH_WATER` bytes, or while a
 * write waits for a client that does not take its replies. An idle
 * connection holds only its handle and the buffer of its waiting read.
 */
export class HandleConn implements Conn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  readonly #handle: RawStream;
  // What arrived while no read waited; created when first needed.
  #queue: ChunkQueue | undefined;
  #reading = false;
  #ended = false;
  #closed = false;
  #failure: Error | undefined;
  // The read that waits, settled once the engine's reads of one wakeup are
  // all in (a microtask after the first).
  #waiting: Settlers | undefined;
  #settling = false;
  // The buffer of the read that waits, and how much the engine put there.
  #target: Uint8Array | undefined;
  #got = 0;
  // The failure callback of the write that waits, if one does.
  #writing: ((err: Error) => void) | undefined;

  /**
   * Wraps an accepted handle, which reads nothing until the first read.
   *
   * @param handle The handle.
   * @param addrs Its addresses, in Deno's form.
   */
  constructor(
    handle: RawStream,
    addrs: { remote: Deno.Addr; local: Deno.Addr },
  ) {
    this.#handle = handle;
    this.remoteAddr = addrs.remote;
    this.localAddr = addrs.local;
    handle.useUserBuffer(scratch);
    handle.onread = (_buffer, nread) => this.#onRead(nread ?? lastReadResult());
  }

  // Not an async function: an idle connection waits here, and a promise
  // costs less memory than an async function's suspended frame.
  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(connectionClosedError());
    if (this.#queue?.bytes) return Promise.resolve(this.#queue.take(buffer));
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve(null);
    this.#target = buffer;
    this.#handle.useUserBuffer(buffer);
    this.#start();
    return new Promise((resolve, reject) =>
      this.#waiting = { resolve, reject }
    );
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#failure) throw this.#failure;
    const req = { oncomplete: (_status: number) => {} };
    const status = this.#handle.writeBuffer(req, bytes);
    if (status < 0) throw this.#failure ?? engineError(status, "write");
    // Taken by the kernel at once: done. (The engine would report it, but
    // not on a handle that stopped reading meanwhile.)
    if (!lastWriteWasAsync()) return bytes.length;
    // The client is not taking its replies as fast as it sends: stop
    // reading it until the server reads again, rather than queue.
    if (!this.#target) this.#stop();
    await new Promise<void>((resolve, reject) => {
      req.oncomplete = (done) =>
        done < 0 ? reject(engineError(done, "write")) : resolve();
      this.#writing = reject;
    }).finally(() => this.#writing = undefined);
    return bytes.length;
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve, reject) => {
      const status = this.#handle.shutdown({
        oncomplete: (done) =>
          done < 0 ? reject(engineError(done, "shutdown")) : resolve(),
      });
      if (status < 0) reject(engineError(status, "shutdown"));
    });
  }

  /**
   * Closes the connection: a pending read or write fails at once, and the
   * socket is closed as `Deno.Conn.close` closes it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(connectionClosedError());
    this.#handle.onread = null;
    this.#stop();
    this.#handle.close();
  }

  #onRead(nread: number): void {
    if (nread > 0) return this.#received(nread);
    if (nread === 0) return;
    this.#stop();
    if (nread !== UV_EOF) return this.#fail(engineError(nread, "read"));
    this.#ended = true;
    this.#settleSoon();
  }

  // Reads land after each other in the waiting read's buffer until it is
  // full; then the handle stops until the next read.
  #received(n: number): void {
    const target = this.#target;
    if (!target) {
      const queue = this.#queue ??= new ChunkQueue();
      queue.push(scratch.slice(0, n));
      if (queue.bytes >= HIGH_WATER) this.#stop();
      return;
    }
    this.#got += n;
    if (this.#got < target.length) {
      this.#handle.useUserBuffer(target.subarray(this.#got));
    } else {
      this.#release();
      this.#stop();
    }
    this.#settleSoon();
  }

  // The waiting read is over: reads land in the scratch buffer again.
  #release(): void {
    this.#target = undefined;
    this.#handle.useUserBuffer(scratch);
  }

  #start(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#handle.readStart();
  }

  #stop(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#handle.readStop();
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#writing?.(this.#failure);
    this.#settleSoon();
  }

  #settleSoon(): void {
    if (this.#settling || !this.#waiting) return;
    this.#settling = true;
    queueMicrotask(() => {
      this.#settling = false;
      this.#settle();
    });
  }

  // Settles the waiting read: bytes first, then a failure, then the end.
  #settle(): void {
    const waiting = this.#waiting;
    const got = this.#got;
    if (!waiting || (got === 0 && !this.#failure && !this.#ended)) return;
    this.#waiting = undefined;
    this.#got = 0;
    if (this.#target) this.#release();
    if (got > 0) waiting.resolve(got);
    else if (this.#failure) waiting.reject(this.#failure);
    else waiting.resolve(null);
  }
}

interface Settlers {
  resolve(n: number | null): void;
  reject(err: Error): void;
}
