import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { Conn } from "../types.ts";

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

/**
 * A `node:net` socket (or a `node:tls` one) as a {@linkcode Conn}.
 *
 * The engine delivers data in events; `read` copies it into the caller's
 * buffer, so the bytes land where the server wants them (its pooled buffers
 * in the SIMD kernel's memory), exactly as on `Deno.Conn`. Between reads,
 * chunks wait in a queue, and the socket is paused once that holds
 * `HIGH_WATER` bytes: a client that the server does not read from is not
 * read from, and the kernel's buffers hold the rest. An idle connection
 * holds no buffer at all.
 */
export class NodeConn implements Conn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  /** Present on TLS connections. */
  readonly handshake?: () => Promise<void>;
  readonly #socket: Socket;
  readonly #queue: Buffer[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  // Paused by this class: pauseOnConnect leaves a new socket paused too.
  #paused = true;
  readonly #pausable: boolean;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;

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
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#settle(() => this.#ended = true));
    socket.on(
      "error",
      (err: Error) => this.#settle(() => this.#failure ??= err),
    );
    socket.on("close", () => this.#settle(() => this.#ended = true));
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) throw closedError();
    while (this.#queue.length === 0) {
      if (this.#failure) throw this.#failure;
      if (this.#ended) return null;
      if (this.#paused) this.#resume();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#take(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (err) => {
        if (err) reject(this.#failure ?? err);
        else resolve(bytes.length);
      });
    });
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
    this.#settle(() => this.#failure ??= closedError());
    const socket = this.#socket;
    if (socket.destroyed || socket.writableLength > 0) {
      socket.destroy();
      return;
    }
    socket.end(() => socket.destroy());
    // The close_notify itself can stall on a full socket buffer.
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    Deno.unrefTimer(timer);
    socket.once("close", () => clearTimeout(timer));
  }

  #onData(chunk: Buffer): void {
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
    this.#socket.pause();
  }

  #resume(): void {
    this.#paused = false;
    this.#socket.resume();
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
