import type { Listener, ListenTarget } from "../types.ts";
import { ReloadableTlsListener } from "./tls_listener.ts";

/**
 * Opens the server's listener. This is the one place that calls
 * `Deno.listen` and `Deno.listenTls`, so that every transport reaches the
 * accept loop in the same shape.
 *
 * With `reusePort` (TCP and TLS, Linux) several processes listen on the
 * same address and the kernel spreads new connections over them; Deno 2.9
 * allows it only with `--unstable-net`.
 *
 * @param target The transport and the address.
 * @returns the listener; it throws here, synchronously, if it cannot listen.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { listen } from "./listen.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * const listener = listen({ transport: "unix", path: `${dir}/upcase.sock` });
 * assertEquals(listener.addr.transport, "unix");
 * listener.close();
 * Deno.removeSync(dir); // empty again: closing removed the socket file
 * ```
 */
export function listen(target: ListenTarget): Listener {
  switch (target.transport) {
    case "tcp": {
      const { hostname, port, reusePort } = target;
      // Left out unless asked for, so that a plain listen never touches an
      // unstable option.
      return Deno.listen({
        hostname,
        port,
        transport: "tcp",
        ...(reusePort ? { reusePort } : {}),
      });
    }
    case "unix":
      return Deno.listen({ path: target.path, transport: "unix" });
    case "tls": {
      const { hostname, port, pem, reusePort } = target;
      let bound: Deno.NetAddr | undefined;
      // Reopened on the port that was bound first, also when it was 0.
      const tls = new ReloadableTlsListener((next) => {
        const listener = Deno.listenTls({
          hostname: bound?.hostname ?? hostname,
          port: bound?.port ?? port,
          transport: "tcp",
          cert: next.cert,
          key: next.key,
          ...(reusePort ? { reusePort } : {}),
        });
        bound ??= listener.addr;
        return listener;
      }, pem);
      return {
        get addr() {
          return tls.addr;
        },
        accept: () => tls.accept(),
        close: () => tls.close(),
        reloadTls: (next) => tls.reload(next),
      };
    }
  }
}
