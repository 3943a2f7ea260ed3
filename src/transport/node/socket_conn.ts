import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { Conn } from "../types.ts";
import { ChunkQueue } from "./chunk_queue.ts";
import { connectionClosedError } from "./closed_error.ts";

// Deno 2.9's node:tls socket never delivers data again once paused, by
// pause() or by its handle (docs/deno_upstream.md), so it is never paused:
// a client that sends this much more than the server can send back,
// without reading, is closed instead.
const UNPAUSABLE_LIMIT = 1024 * 1024;
// How long a closed connection's last output (a TLS close_notify) may take.
const CLOSE_GRACE_MS = 1000;

/**
 * A `node:tls` socket as a {@linkcode Conn}. (Plain connections skip the
 * socket: `HandleConn`, in handle_conn.ts.)
 *
 * The socket delivers its plaintext in events; `read` copies it into the
 * caller's buffer, so the bytes land where the server wants them (its
 * pooled buffers in the SIMD kernel's memory), as on `Deno.TlsConn`.
 * Between reads, chunks wait in a queue, bounded by `UNPAUSABLE_LIMIT`.
 */
export class SocketConn implements Conn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  readonly handshake: () => Promise<void>;
  readonly #socket: Socket;
  readonly #queue = new ChunkQueue();
  #ended = false;
  #closed = false;
  // pauseOnConnect leaves a new socket paused until the first read.
  #flowing = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;

  /**
   * Wraps a socket that is paused (the listener uses `pauseOnConnect`).
   *
   * @param socket The TLS socket over the accepted one.
   * @param addrs Its addresses, in Deno's form.
   * @param handshake The end of the handshake.
   */
  constructor(
    socket: Socket,
    addrs: { remote: Deno.Addr; local: Deno.Addr },
    handshake: () => Promise<void>,
  ) {
    this.#socket = socket;
    this.handshake = handshake;
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
    if (this.#closed) throw connectionClosedError();
    while (this.#queue.bytes === 0) {
      if (this.#failure) throw this.#failure;
      if (this.#ended) return null;
      if (!this.#flowing) {
        this.#flowing = true;
        this.#socket.resume();
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#queue.take(buffer);
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
    this.#settle(() => this.#failure ??= connectionClosedError());
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
    if (this.#queue.bytes > UNPAUSABLE_LIMIT) this.#giveUp();
    this.#settle(() => {});
  }

  // A client this far ahead, on a socket that cannot pause, is let go.
  #giveUp(): void {
    this.#failure ??= new Error(
      `The client sent ${this.#queue.bytes} bytes more than the server could send back, on a node:tls socket, which cannot pause reading`,
    );
    this.#socket.destroy();
  }

  #settle(change: () => void): void {
    change();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
