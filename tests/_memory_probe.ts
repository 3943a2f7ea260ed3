/**
 * A server for memory measurements: it runs serve() on 127.0.0.1 port 0,
 * prints `port N`, and for each line `measure` on standard input runs a full
 * garbage collection and prints Deno.memoryUsage() as JSON. Start it with
 * `deno run --allow-net --v8-flags=--expose-gc tests/_memory_probe.ts`.
 *
 * @module
 */
import { serve } from "../src/serve.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("Run with --v8-flags=--expose-gc");
const encoder = new TextEncoder();
const say = (text: string) =>
  Deno.stdout.writeSync(encoder.encode(text + "\n"));

const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} });
say(`port ${server.addr.port}`);
let buffered = "";
for await (
  const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
) {
  buffered += text;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const command = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (command === "measure") {
      gc();
      gc();
      say(
        JSON.stringify({
          ...Deno.memoryUsage(),
          connections: server.activeConnections,
        }),
      );
    }
  }
}
await server.shutdown();
