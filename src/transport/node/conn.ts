import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { Conn } from "../types.ts";
import { openStreamHandle, type StreamHandle } from "./stream_handle.ts";

// How much a connection queues from the socket before it pauses it: above
// one read of the pump's largest buffer, so that a bulk reader never waits
// for the socket to resume, and small enough that a client nobody reads
// holds little.
const HIGH_WATER = 64 * 1024;
// Deno 2.9's node:tls socket never delivers data again once paused, by
// pause() or by its handle (docs/deno_upstream.md), so a TLS connection is
// never paused: one whose client sends this much more than the server can
// send back, without reading, is closed instead.
const UNPAUSABLE_LIMIT = 1024 * 1024;
// How long a closed connection's last output (a TLS close_notify) may take.
const CLOSE_GRACE_MS = 1000;
// Where a plain socket's reads land while no read waits, before they are
// copied into the queue; shared, since each read is copied out at once.
const scratch = new Uint8Array(HIGH_WATER);

/**
 * A `node:net` socket (or a `node:tls` one) as a {@linkcode Conn}.
 *
 * The engine reads on readiness, whether or not a read waits, which is what
 * keeps it fair at saturation. On a plain socket the engine reads straight
 * into the buffer of the read that waits (the server's pooled buffers in the
 * SIMD kernel's memory), as `Deno.Conn` does, and writes straight from the
 * server's buffer, both at the socket's handle ({@linkcode openStreamHandle}).
 * A TLS socket delivers its plaintext in events, copied into the caller's
 * buffer instead. Bytes that arrive while no read waits go to a queue, and
 * the socket stops reading once that holds `HIGH_WATER` bytes: a client that
 * the server does not read from is not read from, and the kernel's buffers
 * hold the rest. An idle connection holds no buffer beyond its waiting
 * read's.
 */
export class NodeConn implements Conn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  /** Present on TLS connections. */
  readonly handshake?: () => Promise<void>;
  readonly #socket: Socket;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  // Paused by this class: pauseOnConnect leaves a new socket paused too.
  #paused = true;
  readonly #pausable: boolean;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  // A plain socket's handle, read and written directly; absent on TLS.
  readonly #handle: StreamHandle | undefined;
  // The buffer of the read that waits, which the handle reads into.
  #target: Uint8Array | undefined;
  // How much the engine read into #target so far.
  #got = 0;
  // Direct writes not done yet, failed at once by a close or an error.
  readonly #writes = new Set<(err: Error) => void>();

  /**
   * Wraps a socket that is paused (the listener uses `pauseOnConnect`).
   *
   * @param socket The accepted socket, or the TLS socket over it.
   * @param addrs Its addresses, in Deno's form.
   * @param handshake For TLS: the end of the handshake.
   */
  constructor(
    socket: Socket,
    addrs: { remote: Deno.Addr; local: Deno.Addr },
    handshake?: () => Promise<void>,
  ) {
    this.#socket = socket;
    this.#pausable = handshake === undefined;
    if (handshake) this.handshake = handshake;
    this.remoteAddr = addrs.remote;
    this.localAddr = addrs.local;
    this.#handle = handshake === undefined
      ? openStreamHandle(socket, (n, landed) => this.#onRead(n, landed))
      : undefined;
    if (this.#handle) this.#handle.landIn(scratch);
    else socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#settle(() => this.#ended = true));
    socket.on("error", (err: Error) => this.#fail(err));
    socket.on("close", () => {
      this.#settle(() => this.#ended = true);
      // A write the engine never finished, now never will.
      for (const fail of this.#writes) fail(this.#failure ?? closedError());
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) throw closedError();
    while (this.#queue.length === 0) {
      if (this.#failure) throw this.#failure;
      if (this.#ended) return null;
      if (this.#handle) return this.#readDirect(buffer);
      if (this.#paused) this.#resume();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#take(buffer);
  }

  async #readDirect(buffer: Uint8Array): Promise<number | null> {
    this.#target = buffer;
    this.#handle!.landIn(buffer);
    if (this.#paused) this.#resume();
    try {
      while (this.#got === 0) {
        if (this.#failure) throw this.#failure;
        if (this.#ended) return null;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
      return this.#got;
    } finally {
      this.#got = 0;
      if (this.#target) {
        this.#target = undefined;
        this.#handle!.landIn(scratch);
      }
    }
  }

  // The engine reads until the socket has no more, several times per
  // wakeup, before the reader runs again. So a read that waits gets them
  // all, each after the last, until its buffer is full; then the socket
  // stops reading until the next read.
  #onRead(n: number, landed: Uint8Array): void {
    const target = this.#target;
    if (
      target === undefined || landed.buffer !== target.buffer ||
      landed.byteOffset !== target.byteOffset + this.#got
    ) {
      return this.#onData(landed.slice(0, n));
    }
    this.#got += n;
    if (this.#got < target.length) {
      this.#handle!.landIn(target.subarray(this.#got));
    } else {
      this.#target = undefined;
      this.#handle!.landIn(scratch);
      this.#pause();
    }
    this.#settle(() => {});
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#handle) return this.#writeDirect(this.#handle, bytes);
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (err) => {
        if (err) reject(this.#failure ?? err);
        else resolve(bytes.length);
      });
    });
  }

  async #writeDirect(handle: StreamHandle, bytes: Uint8Array): Promise<number> {
    const written = handle.write(bytes);
    if (!written) return bytes.length;
    // The client is not taking the replies as fast as it sends: stop
    // reading it until the server reads again, rather than queue.
    if (!this.#target && !this.#paused) this.#pause();
    let fail!: (err: Error) => void;
    const failed = new Promise<never>((_, reject) => fail = reject);
    this.#writes.add(fail);
    try {
      await Promise.race([written, failed]);
      return bytes.length;
    } catch (err) {
      throw this.#failure ?? err;
    } finally {
      this.#writes.delete(fail);
    }
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  /**
   * Closes the connection. A pending read fails at once. Output that is all
   * written ends properly first (a FIN, and on TLS the close_notify that
   * `Deno.TlsConn` sends too), then the socket goes; output still queued
   * for a client that does not read is dropped at once.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(closedError());
    const socket = this.#socket;
    if (socket.destroyed || socket.writableLength > 0 || this.#writes.size) {
      socket.destroy();
      return;
    }
    socket.end(() => socket.destroy());
    // The close_notify itself can stall on a full socket buffer.
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    Deno.unrefTimer(timer);
    socket.once("close", () => clearTimeout(timer));
  }

  #fail(err: Error): void {
    this.#settle(() => this.#failure ??= err);
    for (const fail of this.#writes) fail(this.#failure!);
  }

  #onData(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued >= HIGH_WATER && !this.#paused) this.#holdBack();
    this.#settle(() => {});
  }

  // Too much queued: pause, or on a socket that cannot pause, give up on
  // a client that far ahead.
  #holdBack(): void {
    if (this.#pausable) return this.#pause();
    if (this.#queued <= UNPAUSABLE_LIMIT) return;
    this.#failure ??= new Error(
      `The client sent ${this.#queued} bytes more than the server could send back, on a node:tls socket, which cannot pause reading`,
    );
    this.#socket.destroy();
  }

  #pause(): void {
    this.#paused = true;
    if (this.#handle) this.#handle.stop();
    else this.#socket.pause();
  }

  #resume(): void {
    this.#paused = false;
    if (this.#handle) this.#handle.start();
    else this.#socket.resume();
  }

  #settle(change: () => void): void {
    change();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #take(buffer: Uint8Array): number {
    let n = 0;
    while (n < buffer.length && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const count = Math.min(head.length, buffer.length - n);
      buffer.set(count === head.length ? head : head.subarray(0, count), n);
      n += count;
      if (count === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(count);
    }
    this.#queued -= n;
    return n;
  }
}

function closedError(): Error {
  return new Deno.errors.BadResource("the connection is closed");
}
