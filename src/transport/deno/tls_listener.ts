import type { TlsPem } from "../../tls/pem.ts";
import { errorMessage } from "../../common/error_message.ts";

/** Opens a TLS listener on the server's address with the given certificate. */
export type OpenTlsListener = (pem: TlsPem) => Deno.TlsListener;

/**
 * A TLS listener whose certificate can be replaced while the server runs.
 *
 * A Deno TLS listener keeps the certificate it was opened with, and a second
 * listener on the same port needs `reusePort`, which Deno 2.9 allows only
 * with `--unstable-net`. So a reload closes the listener and opens a new one
 * on the same address: for that moment (a fraction of a millisecond, which
 * {@linkcode ReloadableTlsListener.reload} returns) new clients are
 * refused, and clients queued in the kernel's backlog are reset. Accepted
 * connections are sockets of their own and keep their session. The pending
 * `accept()` carries on with the new listener, so the accept loop never sees
 * the swap.
 */
export class ReloadableTlsListener {
  readonly #open: OpenTlsListener;
  #listener: Deno.TlsListener;
  #pem: TlsPem;
  // The accept in flight. Deno releases a closed listener's socket only once
  // that accept has ended; reopening the port before then fails with
  // AddrInUse.
  #accepting: Promise<unknown> = Promise.resolve();
  #swapping: Promise<void> | undefined;
  #closed = false;
  #broken: unknown;

  /**
   * Opens the first listener.
   *
   * @param open Opens a listener on the server's address; it is called again for each reload.
   * @param pem The first certificate and key.
   */
  constructor(open: OpenTlsListener, pem: TlsPem) {
    this.#open = open;
    this.#pem = pem;
    this.#listener = open(pem);
  }

  /** The address it listens on; a reload keeps it. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /**
   * Waits for the next connection, across reloads.
   *
   * @returns the accepted connection; its handshake happens on first use.
   */
  async accept(): Promise<Deno.TlsConn> {
    for (;;) {
      await this.#swapping;
      // As a closed listener, so that the accept loop stops rather than
      // retries: there is no socket left to accept on.
      if (this.#broken !== undefined) {
        throw new Deno.errors.BadResource(
          `The listener could not reopen: ${errorMessage(this.#broken)}`,
          { cause: this.#broken },
        );
      }
      const listener = this.#listener;
      const accepting = listener.accept();
      this.#accepting = accepting;
      try {
        return await accepting;
      } catch (err) {
        const replaced = this.#swapping !== undefined ||
          listener !== this.#listener;
        if (replaced && !this.#closed) continue;
        throw err;
      }
    }
  }

  /**
   * Listens with a new certificate from now on. If the new listener cannot
   * open, the old certificate stays in use; if even that cannot reopen (the
   * port was taken meanwhile), the next `accept()` rejects with
   * `BadResource`, and the reason as its cause.
   * Reloads run one after another.
   *
   * @param pem The new certificate and key.
   * @returns how long the port was closed, in milliseconds.
   */
  async reload(pem: TlsPem): Promise<number> {
    const previous = this.#swapping;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#swapping = promise;
    try {
      await previous;
      if (this.#closed || this.#broken !== undefined) {
        throw new Deno.errors.BadResource("The listener is closed");
      }
      const started = performance.now();
      this.#listener.close();
      await this.#accepting.catch(() => {});
      if (this.#closed) {
        throw new Deno.errors.Interrupted(
          "The listener closed during the reload",
        );
      }
      try {
        this.#listener = this.#open(pem);
        this.#pem = pem;
      } catch (err) {
        try {
          this.#listener = this.#open(this.#pem);
        } catch (reopenErr) {
          this.#broken = reopenErr;
          throw reopenErr;
        }
        throw err;
      }
      return performance.now() - started;
    } finally {
      if (this.#swapping === promise) this.#swapping = undefined;
      resolve();
    }
  }

  /** Stops listening; a pending `accept()` rejects. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // A reload had closed it and not yet opened the next one.
    }
  }
}
