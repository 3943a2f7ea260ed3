import { parseArgs } from "@std/cli";
import { CidrSet } from "../proxy/cidr.ts";
import { SERVE_DEFAULTS, TRANSPORTS } from "../server/options.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../logging/logging.ts";

/** A host and port, as `--admin` takes them. */
export interface HostPort {
  /** The address, without brackets for IPv6. */
  hostname: string;
  /** The port; 0 picks a free one. */
  port: number;
}

/** How one option is named, documented and parsed: a row of {@linkcode OPTIONS}. */
export interface OptionSpec {
  /**
   * The command-line flag, without dashes. The config field it sets is its
   * camelCase: `--log-level` sets `logLevel`.
   */
  flag: string;
  /** The environment variable that sets it when the flag is absent. */
  env: string;
  /** A placeholder for the value in the usage text, or "" for a switch. */
  value: string;
  /**
   * The default, as the usage text shows it; it goes through `parse` like
   * any value. "" leaves the option off: its field is then `undefined`.
   */
  default: string;
  /** One line for the usage text. */
  help: string;
  /** Turns the raw text into the value; throws with `name` in the message. */
  parse: (raw: string, name: string) => unknown;
}

// The table shows serve()'s defaults in the command's units and words.
function seconds(milliseconds: number): string {
  return String(milliseconds / 1000);
}

function switchText(on: boolean): "on" | "off" {
  return on ? "on" : "off";
}

function cannot(name: string, raw: string, why: string): string {
  return `Cannot parse ${name}: "${raw}" ${why}`;
}

function parsePort(raw: string, name: string): number {
  if (!/^\d+$/.test(raw)) {
    throw new TypeError(cannot(name, raw, "is not a port number (0-65535)"));
  }
  const port = Number(raw);
  if (port > 65535) {
    throw new RangeError(cannot(name, raw, "is not in 0-65535"));
  }
  return port;
}

function parseSeconds(raw: string, name: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(seconds)) {
    throw new TypeError(
      cannot(
        name,
        raw,
        "is not a number of seconds (0 or more, such as 10 or 2.5)",
      ),
    );
  }
  return seconds;
}

function parseCount(raw: string, name: string): number {
  const count = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(count)) {
    throw new TypeError(
      cannot(name, raw, "is not a whole number (0 or more; 0 means no limit)"),
    );
  }
  return count;
}

function parseChoice<T extends string>(
  choices: readonly T[],
  aliases: Readonly<Record<string, T>> = {},
) {
  return (raw: string, name: string): T => {
    if ((choices as readonly string[]).includes(raw)) return raw as T;
    const alias = aliases[raw];
    if (alias !== undefined) return alias;
    throw new RangeError(
      cannot(name, raw, `is not one of ${describeChoices(choices, aliases)}`),
    );
  };
}

function describeChoices(
  choices: readonly string[],
  aliases: Readonly<Record<string, string>>,
): string {
  return choices.map((choice) => {
    const also = Object.keys(aliases).filter((a) => aliases[a] === choice);
    return also.length > 0 ? `${choice} (or ${also.join(", ")})` : choice;
  }).join(", ");
}

// Operators type "warn" as often as "warning".
const LOG_LEVEL_ALIASES = { warn: "warning" } as const;

const TRUE_WORDS = ["1", "true", "yes", "on"];
const FALSE_WORDS = ["0", "false", "no", "off", ""];

function parseSwitch(raw: string, name: string): boolean {
  if (TRUE_WORDS.includes(raw)) return true;
  if (FALSE_WORDS.includes(raw)) return false;
  throw new TypeError(
    cannot(
      name,
      raw,
      `is not a switch (${
        [...TRUE_WORDS, ...FALSE_WORDS.slice(0, -1)].join(", ")
      })`,
    ),
  );
}

function parseHost(raw: string, name: string): string {
  if (raw.trim() === "") {
    throw new TypeError(
      cannot(name, raw, "is empty; give a hostname or an IP address"),
    );
  }
  return raw;
}

function parseHostPort(raw: string, name: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]\s]+)):(\d+)$/.exec(raw);
  if (!m) {
    throw new TypeError(
      cannot(
        name,
        raw,
        "is not HOST:PORT (such as 127.0.0.1:9090 or [::1]:9090)",
      ),
    );
  }
  return { hostname: (m[1] ?? m[2])!, port: parsePort(m[3]!, name) };
}

function parsePrefix(raw: string, name: string): number {
  const bits = /^[1-9][0-9]{0,2}$/.test(raw) ? Number(raw) : NaN;
  if (!(bits >= 1 && bits <= 128)) {
    throw new RangeError(
      cannot(name, raw, "is not a prefix length from 1 to 128 (such as 64)"),
    );
  }
  return bits;
}

function parseWorkers(raw: string, name: string): number {
  if (raw === "auto") return navigator.hardwareConcurrency;
  const count = /^[1-9][0-9]{0,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(count >= 1 && count <= 1024)) {
    throw new TypeError(
      cannot(name, raw, "is not auto or a number of workers from 1 to 1024"),
    );
  }
  return count;
}

function parseCidrs(raw: string, name: string): CidrSet {
  try {
    return CidrSet.parse(raw);
  } catch (err) {
    throw new TypeError(`Cannot parse ${name}: ${(err as Error).message}`);
  }
}

function parsePath(raw: string, name: string): string {
  if (raw === "") {
    throw new TypeError(
      cannot(name, raw, "is empty; give a path, or leave the option out"),
    );
  }
  return raw;
}

// The table the Config type is made from: a row is all there is to an
// option. Config gets its field, the usage text its line, ENV_NAMES its
// variable, and a worker of --workers its permission to read that variable.
const TABLE = [
  {
    flag: "host",
    env: "UPCASE_HOST",
    value: "HOST",
    default: SERVE_DEFAULTS.hostname,
    help: "address to listen on",
    parse: parseHost,
  },
  {
    flag: "port",
    env: "UPCASE_PORT",
    value: "PORT",
    default: String(SERVE_DEFAULTS.port),
    help: "port to listen on, 0-65535; 0 picks a free port and logs it",
    parse: parsePort,
  },
  {
    flag: "unicode",
    env: "UPCASE_UNICODE",
    value: "",
    default: switchText(SERVE_DEFAULTS.unicode),
    help:
      "full Unicode uppercasing of UTF-8 (straße → STRASSE); invalid bytes pass through",
    parse: parseSwitch,
  },
  {
    flag: "log-level",
    env: "UPCASE_LOG_LEVEL",
    value: "LEVEL",
    default: "info",
    help: `least severe level logged: ${
      describeChoices(LOG_LEVELS, LOG_LEVEL_ALIASES)
    }`,
    parse: parseChoice(LOG_LEVELS, LOG_LEVEL_ALIASES),
  },
  {
    flag: "log-format",
    env: "UPCASE_LOG_FORMAT",
    value: "FORMAT",
    default: "text",
    help: `log line format: ${LOG_FORMATS.join(", ")}`,
    parse: parseChoice(LOG_FORMATS),
  },
  {
    flag: "drain-timeout",
    env: "UPCASE_DRAIN_TIMEOUT",
    value: "SECONDS",
    default: seconds(SERVE_DEFAULTS.drainTimeout),
    help:
      "on SIGINT/SIGTERM, how long open connections may finish before they are cut",
    parse: parseSeconds,
  },
  {
    flag: "max-connections",
    env: "UPCASE_MAX_CONNECTIONS",
    value: "N",
    default: String(SERVE_DEFAULTS.maxConnections),
    help:
      "most connections open at once; at the limit, new clients wait in the backlog (0: no limit)",
    parse: parseCount,
  },
  {
    flag: "max-connections-per-ip",
    env: "UPCASE_MAX_CONNECTIONS_PER_IP",
    value: "N",
    default: String(SERVE_DEFAULTS.maxConnectionsPerIp),
    help:
      "most connections open at once from one address; more are closed at once (0: no limit)",
    parse: parseCount,
  },
  {
    flag: "ipv6-prefix",
    env: "UPCASE_IPV6_PREFIX",
    value: "BITS",
    default: String(SERVE_DEFAULTS.ipv6Prefix),
    help:
      "for --max-connections-per-ip, IPv6 clients count per /BITS network, 1-128",
    parse: parsePrefix,
  },
  {
    flag: "idle-timeout",
    env: "UPCASE_IDLE_TIMEOUT",
    value: "SECONDS",
    default: seconds(SERVE_DEFAULTS.idleTimeout),
    help:
      "close a connection after this long with no bytes either way (0: never)",
    parse: parseSeconds,
  },
  {
    flag: "handshake-timeout",
    env: "UPCASE_HANDSHAKE_TIMEOUT",
    value: "SECONDS",
    default: seconds(SERVE_DEFAULTS.handshakeTimeout),
    help:
      "close a connection whose TLS handshake or PROXY header takes longer (0: never)",
    parse: parseSeconds,
  },
  {
    flag: "admin",
    env: "UPCASE_ADMIN",
    value: "HOST:PORT",
    default: "",
    help:
      "serve /metrics, /healthz, /readyz and a live status page over HTTP here",
    parse: parseHostPort,
  },
  {
    flag: "tls-cert",
    env: "UPCASE_TLS_CERT",
    value: "FILE",
    default: "",
    help:
      "PEM certificate; with --tls-key the data port speaks TLS; SIGHUP reloads both",
    parse: parsePath,
  },
  {
    flag: "tls-key",
    env: "UPCASE_TLS_KEY",
    value: "FILE",
    default: "",
    help: "PEM private key for --tls-cert",
    parse: parsePath,
  },
  {
    flag: "unix",
    env: "UPCASE_UNIX",
    value: "PATH",
    default: "",
    help: "listen on this Unix socket instead of --host and --port",
    parse: parsePath,
  },
  {
    flag: "workers",
    env: "UPCASE_WORKERS",
    value: "N",
    default: "1",
    help:
      "worker processes sharing the port (SO_REUSEPORT, Linux); auto: one per core",
    parse: parseWorkers,
  },
  {
    flag: "proxy-protocol",
    env: "UPCASE_PROXY_PROTOCOL",
    value: "",
    default: switchText(SERVE_DEFAULTS.proxyProtocol),
    help:
      "expect a PROXY protocol v1 or v2 header from a load balancer on each connection",
    parse: parseSwitch,
  },
  {
    flag: "proxy-trusted",
    env: "UPCASE_PROXY_TRUSTED",
    value: "CIDR[,CIDR...]",
    default: SERVE_DEFAULTS.proxyTrusted,
    help: "sources allowed to send a PROXY header; others are closed",
    parse: parseCidrs,
  },
  {
    flag: "transport",
    env: "UPCASE_TRANSPORT",
    value: "NAME",
    default: SERVE_DEFAULTS.transport,
    help:
      "socket engine: deno (Deno.listen) or node (node:net, fair when saturated)",
    parse: parseChoice(TRANSPORTS),
  },
] as const satisfies readonly OptionSpec[];

/** Every option, in the order the usage text lists them. */
export const OPTIONS: readonly OptionSpec[] = TABLE;

type Row = typeof TABLE[number];

// `--log-level` sets `logLevel`: the field is the flag in camelCase.
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

// What the row's parser returns, and undefined if it is off by default.
type ValueOf<R extends Row> =
  | ReturnType<R["parse"]>
  | (R["default"] extends "" ? undefined : never);

/**
 * Everything the command line and the environment can set: for each row of
 * the option table ({@linkcode OPTIONS}) a field named after its flag in camelCase
 * (`--log-level` sets `logLevel`), of the type its parser returns, or
 * `undefined` for an option that is off unless given; and `help` and
 * `version`, which print and exit.
 */
export type Config =
  & { -readonly [R in Row as CamelCase<R["flag"]>]: ValueOf<R> }
  & { help: boolean; version: boolean };

function camelCase(flag: string): string {
  return flag.replace(/-(.)/g, (_, letter: string) => letter.toUpperCase());
}

/** The environment variables upcase reads, for `--allow-env`. */
export const ENV_NAMES: readonly string[] = OPTIONS.map((o) => o.env);

const OPTION_SWITCHES: string[] = OPTIONS.filter((o) => !o.value)
  .map((o) => o.flag);
const SWITCHES = ["help", "version", ...OPTION_SWITCHES];
const VALUED: string[] = OPTIONS.filter((o) => o.value).map((o) => o.flag);
const ALLOWED = [...OPTIONS.map((o) => `--${o.flag}`), "--help", "--version"]
  .join(", ");

/**
 * Reads the configuration from command-line arguments and the environment.
 * A flag beats its environment variable, which beats the default.
 *
 * @param args The command-line arguments, without the program name.
 * @param env Looks up an environment variable; absent ones are `undefined`.
 * @returns the configuration.
 * @throws {TypeError | RangeError} on bad input, with a one-line message that
 * names the option and the allowed values.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { parseConfig } from "./config.ts";
 *
 * const env = (name: string) => name === "UPCASE_PORT" ? "9000" : undefined;
 * assertEquals(parseConfig([], env).port, 9000);
 * assertEquals(parseConfig(["--port", "0"], env).port, 0);
 * assertThrows(() => parseConfig(["--port", "70000"], env), RangeError, "--port");
 * ```
 */
export function parseConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): Config {
  const parsed = parseFlags(joinValues(args));
  const values = OPTIONS.map((option) => [
    camelCase(option.flag),
    readOption(option, parsed[option.flag], env),
  ]);
  // Sound: each field comes from the row its type is made from.
  const config = {
    help: parsed.help === true,
    version: parsed.version === true,
    ...Object.fromEntries(values),
  } as Config;
  checkCombinations(config);
  return config;
}

// parseArgs would read the "-1" of `--port -1` as a flag and drop an empty
// value; joined as `--port=-1`, both reach the value check.
function joinValues(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (
      VALUED.includes(arg.slice(2)) && next !== undefined &&
      !next.startsWith("--")
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function parseFlags(joined: string[]): Record<string, unknown> {
  for (const arg of joined) {
    // parseArgs reads `--unicode=maybe` as true; a typo should not pass.
    const m = /^--(?:no-)?([^=]+)=(.*)$/.exec(arg);
    if (m && SWITCHES.includes(m[1]!) && m[2] !== "true" && m[2] !== "false") {
      throw new TypeError(cannot(`--${m[1]}`, m[2]!, "is not true or false"));
    }
  }
  const problems: string[] = [];
  const parsed = parseArgs(joined, {
    string: VALUED,
    boolean: SWITCHES,
    negatable: OPTION_SWITCHES,
    alias: { h: "help" },
    // Without a default parseArgs sets absent switches to false, and then a
    // flag could not be told from the environment.
    default: Object.fromEntries(OPTION_SWITCHES.map((f) => [f, undefined])),
    unknown: (arg: string) => {
      problems.push(
        arg.startsWith("-")
          ? `Unknown option "${
            arg.replace(/=.*/, "")
          }": allowed options are ${ALLOWED}`
          : `Unexpected argument "${arg}": upcase takes only options (see --help)`,
      );
      return false;
    },
  }) as Record<string, unknown>;
  if (problems.length > 0) throw new TypeError(problems[0]);
  return parsed;
}

// A flag beats its environment variable, which beats the default.
function readOption(
  option: OptionSpec,
  flagValue: unknown,
  env: (name: string) => string | undefined,
): unknown {
  if (typeof flagValue === "boolean") return flagValue;
  if (typeof flagValue === "string") {
    return option.parse(flagValue, `--${option.flag}`);
  }
  const envValue = env(option.env);
  // An empty default means the option is off, which no value can say.
  return envValue !== undefined
    ? option.parse(envValue, option.env)
    : option.default === ""
    ? undefined
    : option.parse(option.default, "the default");
}

function checkCombinations(config: Config): void {
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    const [given, missing] = config.tlsCert === undefined
      ? ["--tls-key", "--tls-cert"]
      : ["--tls-cert", "--tls-key"];
    throw new TypeError(
      `Cannot use ${given} without ${missing}: give both PEM files, or neither`,
    );
  }
  if (config.unix !== undefined && config.tlsCert !== undefined) {
    throw new TypeError(
      "Cannot use --tls-cert with --unix: TLS is served on TCP only; give one or the other",
    );
  }
  if (config.proxyProtocol === true && config.tlsCert !== undefined) {
    throw new TypeError(
      "Cannot use --proxy-protocol with --tls-cert: the PROXY header comes before the TLS handshake, which Deno runs itself; terminate TLS at the load balancer, or drop one",
    );
  }
}
