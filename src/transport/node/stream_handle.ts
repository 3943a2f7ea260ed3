/**
 * Reads and writes on a `node:net` socket's handle, under its stream.
 *
 * The socket's own path allocates a fresh `Buffer` for every read, which
 * keeps the engine's whole read buffer alive, and runs every byte through
 * the Readable and Writable machinery. Under it, the handle (Deno's
 * libuv-compatible `TCPWrap`, or `PipeWrap` for a Unix socket) can read
 * into a buffer the caller names, the way Node's `onread` socket option
 * does, and can write a buffer directly. This is the one module that knows
 * those internals; {@linkcode openStreamHandle} says when they are missing.
 *
 * @module
 */
import process from "node:process";
import type { Socket } from "node:net";
import { getSystemErrorName } from "node:util";

/** The handle of one socket, read and written directly. */
export interface StreamHandle {
  /**
   * Where the next read lands. The engine reads at most its length, and
   * `onRead` gets the bytes there.
   */
  landIn(buffer: Uint8Array): void;
  /** Reads whenever the socket is readable, into the buffer set last. */
  start(): void;
  /** Stops reading: the client's bytes wait in the kernel. */
  stop(): void;
  /**
   * Writes all of `bytes`.
   *
   * @returns undefined if the kernel took them all at once; otherwise a
   * promise that settles once the engine holds no reference to `bytes`.
   */
  write(bytes: Uint8Array): Promise<void> | undefined;
}

interface NativeHandle {
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(
    req: { oncomplete(status: number): void },
    bytes: Uint8Array,
  ): number;
  reading: boolean;
}

interface StreamWrapBinding {
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

let binding: StreamWrapBinding | undefined;

/**
 * Takes over a socket's reads and writes at its handle. The socket must be
 * paused (`pauseOnConnect`) and must stay so: its stream no longer sees
 * data. Its events still come: `end` at the end of the client's input,
 * `error`, `close`.
 *
 * @param socket A plain TCP or Unix socket, not a TLS one.
 * @param onRead Gets each read's byte count and the buffer it landed in; it
 * must be done with the bytes when it returns.
 * @returns the handle, or undefined if this engine lacks what it needs.
 */
export function openStreamHandle(
  socket: Socket,
  onRead: (n: number, buffer: Uint8Array) => void,
): StreamHandle | undefined {
  const own = Object.getOwnPropertySymbols(socket);
  const find = (name: string) => own.find((s) => s.description === name);
  const kBuffer = find("kBuffer");
  const kBufferCb = find("kBufferCb");
  const kBufferGen = find("kBufferGen");
  const fields = socket as unknown as Record<symbol, unknown> & {
    _handle?: NativeHandle;
  };
  const handle = fields._handle;
  binding ??= streamWrap();
  if (
    !kBuffer || !kBufferCb || !kBufferGen || !binding ||
    typeof handle?.useUserBuffer !== "function" ||
    typeof handle.writeBuffer !== "function"
  ) return undefined;
  const { streamBaseState, kLastWriteWasAsync } = binding;
  // The engine's read callback hands user-buffer reads to kBufferCb, and
  // asks kBufferGen, when it is not null, for the next buffer.
  fields[kBufferGen] = null;
  fields[kBufferCb] = (n: number, buffer: Uint8Array) => {
    onRead(n, buffer);
    return true;
  };
  return {
    landIn(buffer) {
      fields[kBuffer] = buffer;
      handle.useUserBuffer(buffer);
    },
    start() {
      handle.reading = true;
      handle.readStart();
    },
    stop() {
      handle.reading = false;
      handle.readStop();
    },
    write(bytes) {
      const req = { oncomplete(_status: number) {} };
      const status = handle.writeBuffer(req, bytes);
      if (status < 0) return Promise.reject(writeError(status));
      // A write the kernel took at once is done now, as the engine's own
      // write path treats it: its completion is not reported on a handle
      // whose reading stopped in the meantime (Deno 2.9).
      if (streamBaseState[kLastWriteWasAsync] === 0) return undefined;
      return new Promise((resolve, reject) => {
        req.oncomplete = (done) =>
          done < 0 ? reject(writeError(done)) : resolve();
      });
    },
  };
}

function streamWrap(): StreamWrapBinding | undefined {
  try {
    const wrap = (process as unknown as {
      binding(name: string): Partial<StreamWrapBinding>;
    }).binding("stream_wrap");
    const { streamBaseState, kLastWriteWasAsync } = wrap;
    if (!streamBaseState || kLastWriteWasAsync === undefined) return undefined;
    return { streamBaseState, kLastWriteWasAsync };
  } catch {
    return undefined;
  }
}

// As the socket's own write errors: a code such as ECONNRESET or EPIPE.
function writeError(status: number): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`write ${code}`), { code, errno: status });
}
