import { OPTIONS } from "./config.ts";

/**
 * The text that `--help` prints, made from the option table so that it
 * always lists what the parser accepts.
 *
 * @returns the usage text, ending in a newline.
 */
export function usage(): string {
  const rows: [string, string][] = OPTIONS.map((o) => {
    const flag = o.value ? `--${o.flag} ${o.value}` : `--${o.flag}`;
    return [flag, `${o.help} (env ${o.env}, default ${o.default || "off"})`];
  });
  rows.push(["--help, -h", "print this help and exit"]);
  rows.push(["--version", "print the version and exit"]);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    "upcase: a concurrent TCP server that sends back whatever it receives, uppercased",
    "",
    "Usage: upcase [options]",
    "",
    "Options (a flag beats its environment variable):",
    ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`),
    "",
    "Try it: upcase --port 8000 & printf 'hello\\n' | nc -N 127.0.0.1 8000",
    "",
  ].join("\n");
}
