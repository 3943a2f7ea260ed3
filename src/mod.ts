/**
 * upcase: a concurrent TCP server that sends back whatever a client sends,
 * uppercased. Start one with {@linkcode serve}.
 *
 * @module
 */
export {
  type DrainSummary,
  serve,
  type ServeOptions,
  type UpcaseServer,
} from "./serve.ts";
export {
  type CloseReason,
  type ConnectionResult,
  type Duplex,
  pipeConnection,
} from "./connection.ts";
export { UpcaseStream, type UpcaseStreamOptions } from "./upcase_stream.ts";
