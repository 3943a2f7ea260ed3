/**
 * upcase: a concurrent TCP server that sends back whatever a client sends,
 * uppercased. Start one with {@linkcode serve}.
 *
 * @module
 */
export {
  type DrainSummary,
  serve,
  type ServeCommonOptions,
  type ServeOptions,
  type ServeUnixOptions,
  type UpcaseServer,
} from "./server/serve.ts";
export { type AdminServer, serveAdmin } from "./admin/server.ts";
export type { TlsPem } from "./tls/pem.ts";
export { clearStaleSocket } from "./transport/deno/unix_socket.ts";
export {
  type CloseReason,
  type ConnectionResult,
  type Duplex,
  pipeConnection,
} from "./connection/result.ts";
export {
  UpcaseStream,
  type UpcaseStreamOptions,
} from "./connection/upcase_stream.ts";
