import { assertEquals, assertThrows } from "@std/assert";
import { ENV_NAMES, OPTIONS, parseConfig } from "./config.ts";
import { usage } from "./usage.ts";

const noEnv = () => undefined;
function envOf(values: Record<string, string>) {
  return (name: string) => values[name];
}

Deno.test("parseConfig gives the documented defaults", () => {
  const { proxyTrusted, ...config } = parseConfig([], noEnv);
  assertEquals(
    ["127.0.0.1", "127.255.0.9", "::1", "10.0.0.1", "::2"].map((a) =>
      proxyTrusted.has(a)
    ),
    [true, true, true, false, false],
  );
  assertEquals(config, {
    host: "0.0.0.0",
    port: 8000,
    unicode: false,
    logLevel: "info",
    logFormat: "text",
    drainTimeout: 10,
    maxConnections: 0,
    maxConnectionsPerIp: 0,
    ipv6Prefix: 64,
    idleTimeout: 300,
    handshakeTimeout: 10,
    admin: undefined,
    tlsCert: undefined,
    tlsKey: undefined,
    unix: undefined,
    workers: 1,
    proxyProtocol: false,
    transport: "deno",
    help: false,
    version: false,
  });
});

Deno.test("parseConfig reads --workers, --proxy-protocol and --proxy-trusted", () => {
  const config = parseConfig(
    ["--workers", "6", "--proxy-protocol", "--proxy-trusted", "10.0.0.0/8"],
    noEnv,
  );
  assertEquals([config.workers, config.proxyProtocol], [6, true]);
  assertEquals(config.proxyTrusted.has("10.9.9.9"), true);
  assertEquals(config.proxyTrusted.has("127.0.0.1"), false);
  assertEquals(
    parseConfig(["--workers=auto"], noEnv).workers,
    navigator.hardwareConcurrency,
  );
  assertThrows(
    () => parseConfig(["--workers", "0"], noEnv),
    TypeError,
    "--workers",
  );
  assertThrows(
    () => parseConfig(["--proxy-trusted", "10.0.0.0/33"], noEnv),
    TypeError,
    "--proxy-trusted",
  );
  assertThrows(
    () =>
      parseConfig(
        ["--proxy-protocol", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        noEnv,
      ),
    TypeError,
    "Cannot use --proxy-protocol with --tls-cert",
  );
});

Deno.test("parseConfig reads the admin address, TLS files and Unix socket path", () => {
  const config = parseConfig([
    "--admin",
    "[::1]:9090",
    "--tls-cert=c.pem",
    "--tls-key",
    "k.pem",
  ], noEnv);
  assertEquals(config.admin, { hostname: "::1", port: 9090 });
  assertEquals([config.tlsCert, config.tlsKey], ["c.pem", "k.pem"]);
  assertEquals(
    parseConfig(["--unix", "/tmp/u.sock"], noEnv).unix,
    "/tmp/u.sock",
  );
  assertThrows(
    () =>
      parseConfig(
        ["--unix", "/tmp/u.sock", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        noEnv,
      ),
    TypeError,
    "Cannot use --tls-cert with --unix",
  );
  assertEquals(
    parseConfig([], envOf({ UPCASE_ADMIN: "127.0.0.1:0" })).admin,
    { hostname: "127.0.0.1", port: 0 },
  );
});

Deno.test("parseConfig rejects a bad admin address and a lone TLS file", () => {
  assertThrows(
    () => parseConfig(["--admin", "9090"], noEnv),
    TypeError,
    'Cannot parse --admin: "9090" is not HOST:PORT',
  );
  assertThrows(
    () => parseConfig(["--admin", "127.0.0.1:70000"], noEnv),
    RangeError,
    "--admin",
  );
  assertThrows(
    () => parseConfig(["--tls-key", "k.pem"], noEnv),
    TypeError,
    "Cannot use --tls-key without --tls-cert",
  );
  assertThrows(
    () => parseConfig(["--tls-cert", "c.pem"], noEnv),
    TypeError,
    "Cannot use --tls-cert without --tls-key",
  );
});

Deno.test("parseConfig takes warn for warning, as operators type it", () => {
  assertEquals(parseConfig(["--log-level", "warn"], noEnv).logLevel, "warning");
  assertEquals(
    parseConfig([], (name) => name === "UPCASE_LOG_LEVEL" ? "warn" : undefined)
      .logLevel,
    "warning",
  );
});

Deno.test("parseConfig takes a drain timeout longer than a timer holds", () => {
  // Waited out in steps by the server; see long_timeout.ts.
  const month = 30 * 24 * 3600;
  assertEquals(
    parseConfig(["--drain-timeout", String(month)], noEnv).drainTimeout,
    month,
  );
});

Deno.test("parseConfig reads every flag", () => {
  const config = parseConfig([
    "--host",
    "127.0.0.2",
    "--port=0",
    "--unicode",
    "--log-level",
    "trace",
    "--log-format",
    "json",
    "--drain-timeout",
    "2.5",
    "--max-connections",
    "100",
    "--max-connections-per-ip",
    "3",
    "--idle-timeout",
    "0",
  ], noEnv);
  assertEquals(config.host, "127.0.0.2");
  assertEquals(config.port, 0);
  assertEquals(config.unicode, true);
  assertEquals(config.logLevel, "trace");
  assertEquals(config.logFormat, "json");
  assertEquals(config.drainTimeout, 2.5);
  assertEquals(config.maxConnections, 100);
  assertEquals(config.maxConnectionsPerIp, 3);
  assertEquals(config.idleTimeout, 0);
});

Deno.test("parseConfig reads every option from the environment", () => {
  const config = parseConfig(
    [],
    envOf({
      UPCASE_HOST: "::1",
      UPCASE_PORT: "9001",
      UPCASE_UNICODE: "yes",
      UPCASE_LOG_LEVEL: "warning",
      UPCASE_LOG_FORMAT: "json",
      UPCASE_DRAIN_TIMEOUT: "0",
      UPCASE_MAX_CONNECTIONS: "5",
      UPCASE_MAX_CONNECTIONS_PER_IP: "2",
      UPCASE_IDLE_TIMEOUT: "0.5",
    }),
  );
  assertEquals(
    [
      config.host,
      config.port,
      config.unicode,
      config.logLevel,
      config.logFormat,
      config.drainTimeout,
    ],
    ["::1", 9001, true, "warning", "json", 0],
  );
  assertEquals([
    config.maxConnections,
    config.maxConnectionsPerIp,
    config.idleTimeout,
  ], [5, 2, 0.5]);
});

Deno.test("parseConfig lets a flag beat the environment", () => {
  const env = envOf({
    UPCASE_PORT: "9001",
    UPCASE_UNICODE: "1",
    UPCASE_LOG_LEVEL: "error",
  });
  const config = parseConfig([
    "--port",
    "9002",
    "--no-unicode",
    "--log-level",
    "debug",
  ], env);
  assertEquals([config.port, config.unicode, config.logLevel], [
    9002,
    false,
    "debug",
  ]);
});

Deno.test("parseConfig rejects every kind of bad input with a message naming the option", () => {
  const cases: [string[], Record<string, string>, ErrorConstructor, string][] =
    [
      [
        ["--port", "70000"],
        {},
        RangeError,
        'Cannot parse --port: "70000" is not in 0-65535',
      ],
      [
        ["--port", "abc"],
        {},
        TypeError,
        'Cannot parse --port: "abc" is not a port number (0-65535)',
      ],
      [
        ["--port", "-1"],
        {},
        TypeError,
        'Cannot parse --port: "-1" is not a port number',
      ],
      [["--port", "80.5"], {}, TypeError, "--port"],
      [["--port"], {}, TypeError, 'Cannot parse --port: ""'],
      [
        [],
        { UPCASE_PORT: "99999" },
        RangeError,
        'Cannot parse UPCASE_PORT: "99999" is not in 0-65535',
      ],
      [
        ["--log-level", "loud"],
        {},
        RangeError,
        'Cannot parse --log-level: "loud" is not one of trace, debug, info, warning (or warn), error',
      ],
      [[], { UPCASE_LOG_LEVEL: "LOUD" }, RangeError, "UPCASE_LOG_LEVEL"],
      [
        ["--log-format", "xml"],
        {},
        RangeError,
        'Cannot parse --log-format: "xml" is not one of text, json',
      ],
      [
        ["--drain-timeout", "soon"],
        {},
        TypeError,
        'Cannot parse --drain-timeout: "soon" is not a number of seconds',
      ],
      [["--drain-timeout", "-1"], {}, TypeError, "--drain-timeout"],
      [["--drain-timeout", "Infinity"], {}, TypeError, "--drain-timeout"],
      [
        [],
        { UPCASE_DRAIN_TIMEOUT: "1e9999" },
        TypeError,
        "UPCASE_DRAIN_TIMEOUT",
      ],
      [["--host", ""], {}, TypeError, "Cannot parse --host"],
      [
        ["--max-connections", "-3"],
        {},
        TypeError,
        'Cannot parse --max-connections: "-3" is not a whole number',
      ],
      [["--max-connections", "2.5"], {}, TypeError, "--max-connections"],
      [
        [],
        { UPCASE_MAX_CONNECTIONS_PER_IP: "many" },
        TypeError,
        "UPCASE_MAX_CONNECTIONS_PER_IP",
      ],
      [
        ["--idle-timeout", "forever"],
        {},
        TypeError,
        "Cannot parse --idle-timeout",
      ],
      [
        ["--unicode=maybe"],
        {},
        TypeError,
        'Cannot parse --unicode: "maybe" is not true or false',
      ],
      [
        [],
        { UPCASE_UNICODE: "maybe" },
        TypeError,
        "Cannot parse UPCASE_UNICODE",
      ],
      [
        ["--bogus"],
        {},
        TypeError,
        'Unknown option "--bogus": allowed options are --host, --port',
      ],
      [["--bogus=1"], {}, TypeError, 'Unknown option "--bogus"'],
      [["-x"], {}, TypeError, 'Unknown option "-x"'],
      [["serve"], {}, TypeError, 'Unexpected argument "serve"'],
      // An empty path or address would otherwise quietly mean "off".
      [
        ["--unix", ""],
        {},
        TypeError,
        'Cannot parse --unix: "" is empty; give a path, or leave the option out',
      ],
      [["--unix="], {}, TypeError, "Cannot parse --unix"],
      [[], { UPCASE_UNIX: "" }, TypeError, "Cannot parse UPCASE_UNIX"],
      [["--tls-cert", ""], {}, TypeError, "Cannot parse --tls-cert"],
      [["--admin", ""], {}, TypeError, "Cannot parse --admin"],
    ];
  for (const [args, env, type, message] of cases) {
    const err = assertThrows(
      () => parseConfig(args, envOf(env)),
      type,
      message,
    );
    assertEquals((err as Error).message.includes("\n"), false, "one line");
  }
});

Deno.test("parseConfig reads --help, -h and --version", () => {
  assertEquals(parseConfig(["--help"], noEnv).help, true);
  assertEquals(parseConfig(["-h"], noEnv).help, true);
  assertEquals(parseConfig(["--version"], noEnv).version, true);
});

Deno.test("usage lists every option with its environment variable and default", () => {
  const text = usage();
  for (const option of OPTIONS) {
    const line = text.split("\n").find((l) =>
      l.trimStart().startsWith(`--${option.flag}`)
    );
    assertEquals(
      line?.includes(option.env),
      true,
      `${option.flag} names ${option.env}`,
    );
    assertEquals(
      line?.includes(`default ${option.default}`),
      true,
      `${option.flag} default`,
    );
  }
  assertEquals(ENV_NAMES.length, OPTIONS.length);
});
