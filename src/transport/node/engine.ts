/**
 * The `node:net` engine's handles, under its sockets: the one module that
 * knows these internals of Deno 2.9.
 *
 * A `net.Socket` costs memory per connection (a Readable, a Writable, an
 * event emitter) and runs every byte through that machinery, and its reads
 * land in a fresh buffer each time. Its handle, Deno's libuv-compatible
 * `TCPWrap` (or `PipeWrap` for a Unix socket), can read into a buffer the
 * caller names, as Node's `onread` socket option does, and write a buffer
 * directly. {@linkcode takeOverAccepts} hands the accepted handles over
 * without making a socket for them.
 *
 * @module
 */
import process from "node:process";
import type net from "node:net";
import { getSystemErrorName } from "node:util";

/** An accepted connection's handle. */
export interface RawStream {
  /** Called for each read: `nread` bytes in the user buffer, or an error. */
  onread: ((buffer: unknown, nread?: number) => void) | null;
  /** Where reads land from now on. */
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: Completion, bytes: Uint8Array): number;
  shutdown(req: Completion): number;
  close(callback?: () => void): void;
  /** TCP only. */
  getpeername?(
    out: { address?: string | undefined; port?: number | undefined },
  ): number;
  setNoDelay?(on: boolean): number;
  /** TCP only: closes with a reset. */
  reset?(callback?: () => void): number;
}

/** A write or shutdown request: `oncomplete` gets 0 or a negative errno. */
export interface Completion {
  oncomplete(status: number): void;
}

interface ListenHandle {
  onconnection: (status: number) => void;
  accept(into: RawStream): number;
}

interface Bindings {
  tcp: new (type: number) => RawStream;
  pipe: new (type: number) => RawStream;
  socketType: number;
  state: Int32Array;
  readIndex: number;
  asyncIndex: number;
}

/** What a read that found the end of the client's input reports. */
export const UV_EOF = -4095;
const UV_EAGAIN = -11;

let bindings: Bindings | undefined;

/**
 * Takes the accepts of a listening server: each connection comes to
 * `onAccept` as a handle, reading nothing until asked, and no socket is
 * made for it.
 *
 * @param server A listening `net.Server`.
 * @param unix Whether it listens on a Unix socket.
 * @param onAccept Gets 0 and the handle, or a negative errno.
 * @returns false if this engine lacks what it needs; the server is then
 * left as it was.
 */
export function takeOverAccepts(
  server: net.Server,
  unix: boolean,
  onAccept: (status: number, handle?: RawStream) => void,
): boolean {
  const listening = (server as unknown as { _handle?: ListenHandle })._handle;
  const found = bindings ??= loadBindings();
  if (!found || typeof listening?.accept !== "function") return false;
  const Handle = unix ? found.pipe : found.tcp;
  listening.onconnection = (status) => {
    if (status !== 0) return onAccept(status);
    const handle = new Handle(found.socketType);
    const accepted = listening.accept(handle);
    if (accepted === 0) return onAccept(0, handle);
    handle.close();
    // Nothing to take after all: not a failure.
    if (accepted !== UV_EAGAIN) onAccept(accepted);
  };
  return true;
}

/** The byte count or error of the read being reported, if not passed. */
export function lastReadResult(): number {
  return bindings!.state[bindings!.readIndex]!;
}

/** Whether the last write left bytes that the engine writes later. */
export function lastWriteWasAsync(): boolean {
  return bindings!.state[bindings!.asyncIndex] !== 0;
}

/**
 * An engine status as an error, named by its code as the socket's own
 * errors are (ECONNRESET, EPIPE, ...).
 *
 * @param status A negative errno.
 * @param what What failed: "read", "write".
 */
export function engineError(status: number, what: string): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${what} ${code}`), { code, errno: status });
}

function loadBindings(): Bindings | undefined {
  try {
    const binding = (process as unknown as {
      binding(name: string): Record<string, unknown>;
    }).binding;
    const wrap = binding("stream_wrap");
    const tcp = binding("tcp_wrap");
    const pipe = binding("pipe_wrap");
    const constants = tcp["constants"] as { SOCKET?: number } | undefined;
    const state = wrap["streamBaseState"];
    const readIndex = wrap["kReadBytesOrError"];
    const asyncIndex = wrap["kLastWriteWasAsync"];
    if (
      typeof tcp["TCP"] !== "function" || typeof pipe["Pipe"] !== "function" ||
      !(state instanceof Int32Array) || typeof readIndex !== "number" ||
      typeof asyncIndex !== "number" || constants?.SOCKET === undefined
    ) return undefined;
    return {
      tcp: tcp["TCP"] as Bindings["tcp"],
      pipe: pipe["Pipe"] as Bindings["pipe"],
      socketType: constants.SOCKET,
      state,
      readIndex,
      asyncIndex,
    };
  } catch {
    return undefined;
  }
}
