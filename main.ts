/**
 * The upcase command: `deno run --allow-net main.ts --help`. The command
 * lives in src/cli/; the library is src/mod.ts.
 *
 * @module
 */
import { runCli } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args));
