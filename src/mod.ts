/**
 * upcase: a concurrent TCP server that sends back whatever a client sends,
 * uppercased. Start one with {@linkcode serve}; add the admin endpoint with
 * {@linkcode serveAdmin}; or uppercase any byte stream with
 * {@linkcode UpcaseStream}.
 *
 * @example Serve, ask the admin endpoint, shut down
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { serve, serveAdmin } from "./mod.ts";
 *
 * await using server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
 * const admin = serveAdmin({ hostname: "127.0.0.1", port: 0, server, onListen() {} });
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await conn.write(new TextEncoder().encode("hi"));
 * await conn.closeWrite();
 * assertEquals(await new Response(conn.readable).text(), "HI");
 * const res = await fetch(`http://127.0.0.1:${admin.addr.port}/healthz`);
 * assertEquals(res.status, 200);
 * await res.body?.cancel();
 * await admin.shutdown();
 * ```
 *
 * @module
 */
export {
  type DrainSummary,
  serve,
  type ServeCommonOptions,
  type ServeOptions,
  type ServerSettings,
  type ServeUnixOptions,
  type UpcaseServer,
} from "./server/serve.ts";
export type { AcceptErrorKind } from "./server/accept_loop.ts";
export type { Admission, SharedLimits } from "./server/shared_limits.ts";
export type {
  ConnectionInfo,
  LiveConnection,
  StatsSnapshot,
} from "./server/stats.ts";
export { type AdminServer, serveAdmin } from "./admin/server.ts";
export { CidrSet } from "./proxy/cidr.ts";
export type { TlsPem } from "./tls/pem.ts";
export { clearStaleSocket } from "./transport/deno/unix_socket.ts";
export type {
  CloseReason,
  ConnectionResult,
  CutReason,
} from "./connection/result.ts";
export {
  UpcaseStream,
  type UpcaseStreamOptions,
} from "./connection/upcase_stream.ts";
