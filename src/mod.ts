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
} from "./serve.ts";
export { type AdminServer, serveAdmin } from "./admin_server.ts";
export type { TlsPem } from "./tls_pem.ts";
export { clearStaleSocket } from "./unix_socket.ts";
export {
  type CloseReason,
  type ConnectionResult,
  type Duplex,
  pipeConnection,
} from "./connection.ts";
export { UpcaseStream, type UpcaseStreamOptions } from "./upcase_stream.ts";
