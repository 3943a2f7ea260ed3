/**
 * The deployment files (deploy/k8s/*.yaml, deploy/upcase.service) agree with
 * the CLI: every flag exists and its value parses, and the ports, probe paths,
 * timeouts and paths in the files match the flags; the NetworkPolicy lets
 * only the scraper reach the admin port.
 *
 * No YAML library is allowed (the lock is frozen), so the manifests are read
 * by a small parser for the block-style subset they are written in; it throws
 * on anything else rather than guess. Where PyYAML is installed, a test checks
 * that the parser agrees with it. Each check is also run against mutated
 * copies of the files, to show that it reports the mismatch.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { type Config, OPTIONS, parseConfig } from "../../src/cli/config.ts";
import { COMPILED_NET_HOSTS, netHost } from "../../src/cli/permissions.ts";
import { ROOT } from "../_helpers.ts";

type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

/** Marks a plain scalar that YAML would read as a number, bool or null. */
const NON_STRING = /^(?:[-+]?\d+(?:\.\d+)?|true|false|null|~)$/;

function stripComment(raw: string): string {
  let quote = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(raw[i - 1]!))) {
      return raw.slice(0, i);
    }
  }
  return raw;
}

/** One scalar: quoted ones are strings, plain ones resolve as in YAML 1.2. */
function scalar(raw: string, no: number): Yaml {
  const text = raw.trim();
  if (/^"(?:[^"\\]|\\.)*"$/.test(text)) return JSON.parse(text) as string;
  if (/^'[^']*'$/.test(text)) return text.slice(1, -1);
  if (text === "{}") return {};
  if (text === "[]") return [];
  if (/^[[{|>&*!]/.test(text) || /^["']/.test(text)) {
    throw new SyntaxError(`Unsupported YAML on line ${no}: "${text}"`);
  }
  if (/^[-+]?\d+$/.test(text)) return Number(text);
  if (/^[-+]?\d+\.\d+$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  if (text === "null" || text === "~" || text === "") return null;
  return text;
}

const MAP_ENTRY =
  /^("[^"]*"|'[^']*'|[^\s"'#-][^:]*?|-[^\s:][^:]*?)\s*:(?:\s+(.*))?$/;

/**
 * Parses the block-style YAML subset the manifests use: mappings, sequences
 * (also of mappings), plain and quoted scalars, comments and `---`.
 */
export function parseYaml(text: string): Yaml[] {
  const docs: Line[][] = [[]];
  text.split("\n").forEach((raw, i) => {
    if (/^---\s*$/.test(raw)) return void docs.push([]);
    const body = stripComment(raw).trimEnd();
    if (body.trim() === "") return;
    if (/^\s*\t/.test(body)) {
      throw new SyntaxError(`Tab indentation on line ${i + 1}`);
    }
    docs.at(-1)!.push({
      indent: body.length - body.trimStart().length,
      text: body.trimStart(),
      no: i + 1,
    });
  });
  return docs.filter((d) => d.length > 0).map((lines) => {
    let pos = 0;
    const isItem = (l: Line) => l.text === "-" || l.text.startsWith("- ");
    const block = (indent: number): Yaml => {
      const first = lines[pos]!;
      if (first.indent !== indent) {
        throw new SyntaxError(`Bad indentation on line ${first.no}`);
      }
      return isItem(first) ? sequence(indent) : mapping(indent);
    };
    const sequence = (indent: number): Yaml[] => {
      const out: Yaml[] = [];
      while (pos < lines.length) {
        const line = lines[pos]!;
        if (line.indent !== indent || !isItem(line)) break;
        const rest = line.text.slice(1).trimStart();
        const offset = line.text.length - rest.length;
        if (rest === "") {
          pos++;
          const next = lines[pos];
          out.push(next && next.indent > indent ? block(next.indent) : null);
        } else if (
          MAP_ENTRY.test(rest) || rest === "-" || rest.startsWith("- ")
        ) {
          // "- key: value" opens a mapping indented to where "key" starts.
          lines[pos] = { indent: indent + offset, text: rest, no: line.no };
          out.push(block(indent + offset));
        } else {
          out.push(scalar(rest, line.no));
          pos++;
        }
      }
      return out;
    };
    const mapping = (indent: number): { [k: string]: Yaml } => {
      const out: { [k: string]: Yaml } = {};
      while (pos < lines.length) {
        const line = lines[pos]!;
        if (line.indent < indent) break;
        if (line.indent > indent || isItem(line)) {
          throw new SyntaxError(`Unexpected line ${line.no}: "${line.text}"`);
        }
        const m = MAP_ENTRY.exec(line.text);
        if (!m) {
          throw new SyntaxError(`Not a mapping entry, line ${line.no}`);
        }
        const key = String(scalar(m[1]!, line.no));
        if (key in out) {
          throw new SyntaxError(`Duplicate key "${key}" on line ${line.no}`);
        }
        pos++;
        if (m[2] !== undefined && m[2] !== "") {
          out[key] = scalar(m[2], line.no);
          continue;
        }
        const next = lines[pos];
        if (next && next.indent > indent) out[key] = block(next.indent);
        else if (next && next.indent === indent && isItem(next)) {
          out[key] = sequence(indent);
        } else out[key] = null;
      }
      return out;
    };
    const value = block(lines[0]!.indent);
    if (pos !== lines.length) {
      throw new SyntaxError(`Unparsed YAML from line ${lines[pos]!.no}`);
    }
    return value;
  });
}

/** Plain (unquoted) scalars in `args:` lists that YAML reads as non-strings. */
function unquotedNonStrings(text: string): string[] {
  const found: string[] = [];
  let argsIndent = -1;
  for (const raw of text.split("\n")) {
    const body = stripComment(raw).trimEnd();
    if (body.trim() === "") continue;
    const indent = body.length - body.trimStart().length;
    if (/^\s*(args|command):\s*$/.test(body)) {
      argsIndent = indent;
      continue;
    }
    if (argsIndent < 0) continue;
    const item = /^\s*-\s+(.*)$/.exec(body);
    if (indent < argsIndent || (indent === argsIndent && !item)) {
      argsIndent = -1;
    } else if (item && NON_STRING.test(item[1]!)) found.push(item[1]!);
  }
  return found;
}

// ---------------------------------------------------------------------------
// Checks. Each returns the problems it found, so that a mutated copy can be
// shown to produce one.

/** The files the checks read. */
export interface DeployFiles {
  deployment: string;
  service: string;
  networkPolicy: string;
  unit: string;
  readme: string;
  denoJson: string;
}

const FLAGS = new Set(OPTIONS.map((o) => o.flag));
/**
 * What `deno task compile` does not embed: --allow-read (and write, for a
 * Unix socket), and the network beyond the wildcard and loopback hosts. It
 * does embed --allow-run (of its install path) and --unstable-net, for
 * --workers.
 */
function needsMorePermissions(config: Config): string[] {
  const extra: string[] = [];
  const hosts = [
    ["--host", config.host],
    ["--admin", config.admin?.hostname],
  ] as const;
  for (const [flag, host] of hosts) {
    if (host !== undefined && !COMPILED_NET_HOSTS.includes(netHost(host))) {
      extra.push(`${flag} ${host} (not in its --allow-net)`);
    }
  }
  if (config.tlsCert !== undefined) {
    extra.push("--tls-cert (needs --allow-read)");
  }
  if (config.unix !== undefined) {
    extra.push("--unix (needs --allow-read/write)");
  }
  return extra;
}

function checkArgs(
  args: readonly string[],
  where: string,
  problems: string[],
): Config | undefined {
  for (const arg of args) {
    if (!arg.startsWith("--")) continue;
    const name = arg.slice(2).replace(/=.*/, "").replace(/^no-/, "");
    if (!FLAGS.has(name)) {
      problems.push(`${where}: --${name} is not an upcase option`);
    }
  }
  try {
    const config = parseConfig(args, () => undefined);
    for (const extra of needsMorePermissions(config)) {
      problems.push(`${where}: the compiled binary cannot use ${extra}`);
    }
    return config;
  } catch (err) {
    problems.push(`${where}: parseConfig rejects the args: ${String(err)}`);
    return undefined;
  }
}

type Obj = { [k: string]: Yaml };
function obj(value: Yaml | undefined): Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value
    : {};
}
function list(value: Yaml | undefined): Yaml[] {
  return Array.isArray(value) ? value : [];
}

/** A systemd time span in seconds (`40`, `40s` or `1min`); NaN otherwise. */
function secondsOf(value: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(s|min)?$/.exec(value ?? "");
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === "min" ? 60 : 1);
}

/** The install path from README's Deploy section (`install ... dist/upcase PATH`). */
export function installPath(readme: string): string | undefined {
  return /\binstall\b[^\n]*?\sdist\/upcase\s+(\/\S+)/.exec(readme)?.[1];
}

/**
 * Checks what `deno task compile` embeds: `--allow-run` for the README's
 * install path only (the binary starts itself as the --workers processes),
 * and `--allow-net` for {@linkcode COMPILED_NET_HOSTS} only.
 */
export function checkCompileTask(files: DeployFiles): string[] {
  const task: string = JSON.parse(files.denoJson).tasks?.compile ?? "";
  const words = task.split(/\s+/);
  const problems: string[] = [];
  for (const flag of ["--allow-run", "--allow-net", "--allow-all", "-A"]) {
    if (words.includes(flag)) {
      problems.push(`deno.json: compile grants ${flag} without a scope`);
    }
  }
  const value = (flag: string) =>
    words.find((w) => w.startsWith(`${flag}=`))?.slice(flag.length + 1);
  const run = value("--allow-run");
  const path = installPath(files.readme);
  if (run !== path) {
    problems.push(
      `deno.json: compile's --allow-run=${run} is not README's install path ${path}`,
    );
  }
  const net = value("--allow-net");
  if (net !== COMPILED_NET_HOSTS.join(",")) {
    problems.push(
      `deno.json: compile's --allow-net=${net} is not COMPILED_NET_HOSTS (src/permissions.ts) ${
        COMPILED_NET_HOSTS.join(",")
      }`,
    );
  }
  return problems;
}

/** Checks the Kubernetes manifests against the CLI. */
export function checkKubernetes(files: DeployFiles): string[] {
  const problems: string[] = [];
  const docs = [...parseYaml(files.deployment), ...parseYaml(files.service)]
    .map(obj);
  const deployments = docs.filter((d) => d.kind === "Deployment");
  const services = docs.filter((d) => d.kind === "Service");
  if (deployments.length !== 1 || services.length !== 1) {
    return [`expected one Deployment and one Service`];
  }
  const deployment = deployments[0]!;
  const podTemplate = obj(obj(deployment.spec).template);
  const pod = obj(podTemplate.spec);
  const podLabels = obj(obj(podTemplate.metadata).labels);
  const containers = list(pod.containers).map(obj);
  const container = containers.find((c) => c.name === "upcase");
  if (!container) return ["Deployment: no container named upcase"];

  for (const arg of unquotedNonStrings(files.deployment)) {
    problems.push(`Deployment: arg ${arg} must be quoted (args are strings)`);
  }
  const args = [...list(container.command), ...list(container.args)].map(
    String,
  );
  const config = checkArgs(args, "Deployment args", problems);
  if (!config) return problems;
  if (config.admin === undefined) {
    return [...problems, "Deployment: --admin is not set, probes need it"];
  }
  const admin = config.admin;
  if (!["0.0.0.0", "::"].includes(admin.hostname)) {
    problems.push(
      `Deployment: --admin ${admin.hostname} is not reachable by the kubelet`,
    );
  }

  const version = JSON.parse(files.denoJson).version;
  if (!String(container.image).endsWith(`:${version}`)) {
    problems.push(
      `Deployment: image ${container.image} is not tagged ${version}`,
    );
  }

  const ports = list(container.ports).map(obj);
  const byName = new Map(ports.map((p) => [p.name, p.containerPort]));
  if (byName.get("data") !== config.port) {
    problems.push(
      `Deployment: containerPort data is ${
        byName.get("data")
      }, --port is ${config.port}`,
    );
  }
  if (byName.get("admin") !== admin.port) {
    problems.push(
      `Deployment: containerPort admin is ${
        byName.get("admin")
      }, --admin port is ${admin.port}`,
    );
  }
  const resolve = (port: Yaml | undefined) =>
    typeof port === "string" ? byName.get(port) : port;

  for (
    const [probe, path] of [
      ["livenessProbe", "/healthz"],
      ["readinessProbe", "/readyz"],
    ] as const
  ) {
    const get = obj(obj(container[probe]).httpGet);
    if (get.path !== path) {
      problems.push(`Deployment: ${probe} path is ${get.path}, not ${path}`);
    }
    if (resolve(get.port) !== admin.port) {
      problems.push(
        `Deployment: ${probe} port ${get.port} is not the --admin port ${admin.port}`,
      );
    }
  }

  const grace = pod.terminationGracePeriodSeconds;
  if (!(typeof grace === "number" && grace > config.drainTimeout)) {
    problems.push(
      `Deployment: terminationGracePeriodSeconds ${grace} is not longer than --drain-timeout ${config.drainTimeout}`,
    );
  }

  const podSec = obj(pod.securityContext);
  const sec = obj(container.securityContext);
  const want: [string, Yaml | undefined, Yaml][] = [
    ["runAsNonRoot", sec.runAsNonRoot ?? podSec.runAsNonRoot, true],
    ["readOnlyRootFilesystem", sec.readOnlyRootFilesystem, true],
    ["allowPrivilegeEscalation", sec.allowPrivilegeEscalation, false],
    [
      "seccompProfile",
      obj(sec.seccompProfile ?? podSec.seccompProfile).type,
      "RuntimeDefault",
    ],
  ];
  for (const [name, actual, expected] of want) {
    if (actual !== expected) {
      problems.push(`Deployment: securityContext ${name} is ${actual}`);
    }
  }
  if (!list(obj(sec.capabilities).drop).includes("ALL")) {
    problems.push("Deployment: capabilities do not drop ALL");
  }

  const annotations = obj(obj(podTemplate.metadata).annotations);
  if (annotations["prometheus.io/scrape"] !== undefined) {
    if (annotations["prometheus.io/port"] !== String(admin.port)) {
      problems.push(
        `Deployment: prometheus.io/port ${
          annotations["prometheus.io/port"]
        } is not the --admin port ${admin.port}`,
      );
    }
    if (annotations["prometheus.io/path"] !== "/metrics") {
      problems.push("Deployment: prometheus.io/path is not /metrics");
    }
  }

  const matchLabels = obj(obj(obj(deployment.spec).selector).matchLabels);
  const service = services[0]!;
  const serviceSpec = obj(service.spec);
  for (
    const [what, selector] of [
      ["Deployment selector", matchLabels],
      ["Service selector", obj(serviceSpec.selector)],
    ] as const
  ) {
    if (Object.keys(selector).length === 0) {
      problems.push(`${what} is empty`);
    }
    for (const [key, value] of Object.entries(selector)) {
      if (podLabels[key] !== value) {
        problems.push(`${what} ${key}=${value} does not match the pod labels`);
      }
    }
  }
  const servicePorts = list(serviceSpec.ports).map(obj);
  for (const port of servicePorts) {
    const target = resolve(port.targetPort ?? port.port);
    if (target === undefined) {
      problems.push(`Service: targetPort ${port.targetPort} names no port`);
    }
    if ((port.protocol ?? "TCP") !== "TCP") {
      problems.push(`Service: port ${port.name} is not TCP`);
    }
  }
  if (
    !servicePorts.some((p) => resolve(p.targetPort ?? p.port) === config.port)
  ) {
    problems.push(`Service: no port targets the data port ${config.port}`);
  }
  return problems;
}

/** The upcase pod of the Deployment: its labels, ports and parsed args. */
function upcasePod(files: DeployFiles) {
  const deployment = parseYaml(files.deployment).map(obj).find((d) =>
    d.kind === "Deployment"
  );
  const template = obj(obj(deployment?.spec).template);
  const container = list(obj(template.spec).containers).map(obj).find((c) =>
    c.name === "upcase"
  );
  if (!container) return undefined;
  const args = [...list(container.command), ...list(container.args)];
  let config: Config;
  try {
    config = parseConfig(args.map(String), () => undefined);
  } catch {
    // checkKubernetes reports it.
    return undefined;
  }
  const byName = new Map(
    list(container.ports).map(obj).map((p) => [p.name, p.containerPort]),
  );
  return {
    labels: obj(obj(template.metadata).labels),
    config,
    resolve: (port: Yaml | undefined) =>
      typeof port === "string" ? byName.get(port) : port,
  };
}

/** The problems of one `from` entry that may reach the admin port. */
function adminPeerProblems(peer: Obj, rule: number): string[] {
  const where = `NetworkPolicy: rule ${rule}`;
  if (peer.ipBlock !== undefined) {
    return [
      `${where} opens the admin port to an ipBlock; name the scraper by labels`,
    ];
  }
  const problems: string[] = [];
  const labelled = (selector: Yaml | undefined) =>
    Object.keys(obj(obj(selector).matchLabels)).length > 0 ||
    list(obj(selector).matchExpressions).length > 0;
  if (!labelled(peer.podSelector)) {
    problems.push(
      `${where} opens the admin port to every pod it selects; give a podSelector`,
    );
  }
  if (
    peer.namespaceSelector !== undefined && !labelled(peer.namespaceSelector)
  ) {
    problems.push(`${where} opens the admin port to every namespace`);
  }
  return problems;
}

/**
 * Checks the NetworkPolicy against the Deployment: it selects the upcase
 * pods, lets any client reach the data port, and lets only labelled pods
 * (the scraper) reach the --admin port; the kubelet's probes come from the
 * node, which NetworkPolicy always allows.
 */
export function checkNetworkPolicy(files: DeployFiles): string[] {
  const policies = parseYaml(files.networkPolicy).map(obj).filter((d) =>
    d.kind === "NetworkPolicy"
  );
  const pod = upcasePod(files);
  if (policies.length !== 1) return ["expected one NetworkPolicy"];
  if (!pod?.config.admin) {
    return ["NetworkPolicy: the Deployment has no --admin"];
  }
  const problems: string[] = [];
  const spec = obj(policies[0]!.spec);
  const selector = obj(obj(spec.podSelector).matchLabels);
  if (Object.keys(selector).length === 0) {
    problems.push("NetworkPolicy podSelector is empty");
  }
  for (const [key, value] of Object.entries(selector)) {
    if (pod.labels[key] !== value) {
      problems.push(
        `NetworkPolicy podSelector ${key}=${value} does not match the pod labels`,
      );
    }
  }
  if (!list(spec.policyTypes).includes("Ingress")) {
    problems.push(
      "NetworkPolicy: policyTypes leaves out Ingress, so it restricts nothing",
    );
  }
  const { port: data } = pod.config;
  const admin = pod.config.admin.port;
  let dataOpen = false;
  let adminReached = false;
  for (const [i, rule] of list(spec.ingress).map(obj).entries()) {
    const ports = list(rule.ports).map(obj);
    for (const p of ports) {
      if (pod.resolve(p.port) === undefined) {
        problems.push(
          `NetworkPolicy: rule ${i + 1} port ${p.port} names no container port`,
        );
      }
    }
    // A rule without ports covers them all.
    const covers = (port: number) =>
      ports.length === 0 ||
      ports.some((p) =>
        pod.resolve(p.port) === port && (p.protocol ?? "TCP") === "TCP"
      );
    const from = list(rule.from).map(obj);
    if (covers(data) && from.length === 0) dataOpen = true;
    if (!covers(admin)) continue;
    if (from.length === 0) {
      problems.push(
        `NetworkPolicy: rule ${
          i + 1
        } lets every source reach the admin port ${admin}`,
      );
      continue;
    }
    problems.push(...from.flatMap((peer) => adminPeerProblems(peer, i + 1)));
    adminReached = true;
  }
  if (!dataOpen) {
    problems.push(
      `NetworkPolicy: no rule lets clients reach the data port ${data}`,
    );
  }
  if (!adminReached) {
    problems.push(
      `NetworkPolicy: no rule lets the scraper reach the --admin port ${admin}`,
    );
  }
  return problems;
}

/** Reads a systemd unit: section → key → values (repeated keys kept). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current = new Map<string, string[]>();
  const joined = text.replace(/\\\n/g, " ");
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!m) throw new SyntaxError(`Not a unit line: "${line}"`);
    current.set(m[1]!, [...(current.get(m[1]!) ?? []), m[2]!.trim()]);
  }
  return sections;
}

/** Checks the systemd unit against the CLI and README. */
export function checkUnit(files: DeployFiles): string[] {
  const problems: string[] = [];
  const service = parseUnit(files.unit).get("Service");
  if (!service) return ["unit: no [Service] section"];
  const last = (key: string) => service.get(key)?.at(-1);

  const execStart = last("ExecStart") ?? "";
  if (/["'$%]/.test(execStart)) {
    problems.push("unit: ExecStart uses quotes or specifiers; keep it plain");
  }
  const [binary = "", ...args] = execStart.split(/\s+/).filter((s) => s);
  const path = installPath(files.readme);
  if (path === undefined) {
    problems.push("README: no `install ... dist/upcase PATH` line");
  } else if (binary !== path) {
    problems.push(`unit: ExecStart runs ${binary}, README installs ${path}`);
  }
  const config = checkArgs(args, "unit ExecStart", problems);
  if (!config) return problems;

  if (last("KillSignal") !== "SIGTERM") {
    problems.push("unit: KillSignal is not SIGTERM");
  }
  // Both reach every --workers process, each of which then drains once.
  const killMode = last("KillMode") ?? "control-group";
  if (killMode !== "control-group" && killMode !== "mixed") {
    problems.push(
      `unit: KillMode ${killMode} leaves --workers processes running after a stop`,
    );
  }
  const stop = secondsOf(last("TimeoutStopSec"));
  if (!(stop > config.drainTimeout)) {
    problems.push(
      `unit: TimeoutStopSec ${
        last("TimeoutStopSec")
      } is not longer than --drain-timeout ${config.drainTimeout}`,
    );
  }
  if (last("Restart") !== "on-failure") {
    problems.push("unit: Restart is not on-failure");
  }
  if (
    ["yes", "true", "1", "on"].includes(last("MemoryDenyWriteExecute") ?? "")
  ) {
    problems.push("unit: MemoryDenyWriteExecute breaks V8's JIT");
  }
  const nofile = Number(last("LimitNOFILE"));
  if (config.maxConnections > 0 && !(nofile > config.maxConnections)) {
    problems.push(
      `unit: LimitNOFILE ${
        last("LimitNOFILE")
      } is not above --max-connections ${config.maxConnections}`,
    );
  }
  if (last("CapabilityBoundingSet") === "" && config.port < 1024) {
    problems.push(
      `unit: port ${config.port} needs CAP_NET_BIND_SERVICE, and the unit grants none`,
    );
  }
  const families = (last("RestrictAddressFamilies") ?? "").split(/\s+/);
  if (!families.includes("AF_INET")) {
    problems.push("unit: RestrictAddressFamilies leaves out AF_INET");
  }
  for (
    const key of [
      "NoNewPrivileges",
      "DynamicUser",
      "ProtectHome",
      "PrivateTmp",
      "PrivateDevices",
      "LockPersonality",
    ]
  ) {
    if (last(key) !== "yes") problems.push(`unit: ${key} is not yes`);
  }
  if (last("ProtectSystem") !== "strict") {
    problems.push("unit: ProtectSystem is not strict");
  }
  return problems;
}

// ---------------------------------------------------------------------------

async function readFiles(): Promise<DeployFiles> {
  const read = (path: string) => Deno.readTextFile(`${ROOT}${path}`);
  return {
    deployment: await read("deploy/k8s/deployment.yaml"),
    service: await read("deploy/k8s/service.yaml"),
    networkPolicy: await read("deploy/k8s/networkpolicy.yaml"),
    unit: await read("deploy/upcase.service"),
    readme: await read("README.md"),
    denoJson: await read("deno.json"),
  };
}

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  assert(out !== text, `the mutation ${from} found nothing to change`);
  return out;
}

Deno.test("parseYaml reads the block subset and refuses the rest", () => {
  assertEquals(
    parseYaml(
      'a: 1\nb:\n  - x\n  - "7"\n  - name: n # c\n    v: true\nc: {}\n---\nd:\n- e\n',
    ),
    [{ a: 1, b: ["x", "7", { name: "n", v: true }], c: {} }, { d: ["e"] }],
  );
  for (
    const bad of [
      "a: [1, 2]\n",
      "a: |\n  x\n",
      "a: 1\n  b: 2\n",
      "a: 1\na: 2\n",
    ]
  ) {
    let threw = false;
    try {
      parseYaml(bad);
    } catch (err) {
      threw = err instanceof SyntaxError;
    }
    assert(threw, `parseYaml accepted ${JSON.stringify(bad)}`);
  }
});

Deno.test("deploy files agree with the CLI", async () => {
  const files = await readFiles();
  assertEquals(checkKubernetes(files), []);
  assertEquals(checkNetworkPolicy(files), []);
  assertEquals(checkUnit(files), []);
  assertEquals(checkCompileTask(files), []);
  assertEquals(installPath(files.readme), "/usr/local/bin/upcase");
});

Deno.test("deploy checks report a change made in one place only", async () => {
  const files = await readFiles();
  const cases: [string, keyof DeployFiles, string | RegExp, string, string][] =
    [
      [
        "renamed flag in k8s",
        "deployment",
        "- --drain-timeout",
        "- --drain-timeot",
        "--drain-timeot is not an upcase option",
      ],
      [
        "bad value in k8s",
        "deployment",
        "- json",
        "- jsn",
        "parseConfig rejects",
      ],
      [
        "admin port in args only",
        "deployment",
        "0.0.0.0:9090",
        "0.0.0.0:9091",
        "containerPort admin is 9090, --admin port is 9091",
      ],
      [
        "admin on loopback in k8s",
        "deployment",
        "0.0.0.0:9090",
        "127.0.0.1:9090",
        "not reachable by the kubelet",
      ],
      [
        "data containerPort only",
        "deployment",
        "containerPort: 7000",
        "containerPort: 7001",
        "containerPort data is 7001, --port is 7000",
      ],
      [
        "probe path",
        "deployment",
        "path: /readyz",
        "path: /ready",
        "readinessProbe path is /ready",
      ],
      [
        "probe on the data port",
        "deployment",
        /port: admin\n(\s+periodSeconds: 10)/,
        "port: data\n$1",
        "livenessProbe port data is not the --admin port",
      ],
      [
        "grace period too short",
        "deployment",
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 25",
        "terminationGracePeriodSeconds 25 is not longer",
      ],
      [
        "unquoted number in args",
        "deployment",
        '- "7000"',
        "- 7000",
        "arg 7000 must be quoted",
      ],
      [
        "privilege escalation",
        "deployment",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
        "allowPrivilegeEscalation is true",
      ],
      [
        "prometheus port",
        "deployment",
        'prometheus.io/port: "9090"',
        'prometheus.io/port: "9091"',
        "prometheus.io/port 9091",
      ],
      [
        "service selector",
        "service",
        /selector:\n(\s+)app\.kubernetes\.io\/name: upcase/,
        "selector:\n$1app.kubernetes.io/name: upcas",
        "Service selector app.kubernetes.io/name=upcas",
      ],
      [
        "service targetPort",
        "service",
        "targetPort: data",
        "targetPort: dat",
        "targetPort dat names no port",
      ],
      [
        "admin port in args only, named in the policy",
        "deployment",
        "0.0.0.0:9090",
        "0.0.0.0:9091",
        "no rule lets the scraper reach the --admin port 9091",
      ],
      [
        "policy on another admin port",
        "networkPolicy",
        "- port: admin",
        "- port: 9091",
        "no rule lets the scraper reach the --admin port 9090",
      ],
      [
        "policy port that names nothing",
        "networkPolicy",
        "- port: data",
        "- port: dta",
        "rule 1 port dta names no container port",
      ],
      [
        "policy without the data port",
        "networkPolicy",
        "    - ports:\n        - port: data\n          protocol: TCP\n",
        "",
        "no rule lets clients reach the data port 7000",
      ],
      [
        "policy rule for all ports from anywhere",
        "networkPolicy",
        "    - ports:\n        - port: data\n          protocol: TCP\n",
        "    - {}\n",
        "rule 1 lets every source reach the admin port 9090",
      ],
      [
        "admin port from anywhere",
        "networkPolicy",
        / {4}- from:\n(?: {8}.*\n)+ {6}ports:\n/,
        "    - ports:\n",
        "rule 2 lets every source reach the admin port 9090",
      ],
      [
        "admin port from every namespace",
        "networkPolicy",
        /namespaceSelector:\n\s+matchLabels:\n\s+kubernetes\.io\/metadata\.name: monitoring/,
        "namespaceSelector: {}",
        "rule 2 opens the admin port to every namespace",
      ],
      [
        "admin port from every pod of the namespace",
        "networkPolicy",
        /\n\s+podSelector:\n\s+matchLabels:\n\s+app\.kubernetes\.io\/name: prometheus/,
        "",
        "rule 2 opens the admin port to every pod it selects",
      ],
      [
        "admin port from an IP block",
        "networkPolicy",
        "- namespaceSelector:",
        "- ipBlock:\n            cidr: 0.0.0.0/0\n          namespaceSelector:",
        "rule 2 opens the admin port to an ipBlock",
      ],
      [
        "policy selects other pods",
        "networkPolicy",
        /matchLabels:\n(\s+)app\.kubernetes\.io\/name: upcase/,
        "matchLabels:\n$1app.kubernetes.io/name: upcas",
        "NetworkPolicy podSelector app.kubernetes.io/name=upcas",
      ],
      [
        "policy for egress only",
        "networkPolicy",
        "- Ingress",
        "- Egress",
        "policyTypes leaves out Ingress",
      ],
      [
        "renamed flag in the unit",
        "unit",
        "--log-format json",
        "--log-fmt json",
        "--log-fmt is not an upcase option",
      ],
      [
        "kill mode",
        "unit",
        "KillMode=control-group",
        "KillMode=process",
        "KillMode process leaves --workers processes running",
      ],
      [
        "unit binary path",
        "unit",
        "ExecStart=/usr/local/bin/upcase",
        "ExecStart=/usr/bin/upcase",
        "ExecStart runs /usr/bin/upcase, README installs /usr/local/bin/upcase",
      ],
      [
        "README install path",
        "readme",
        /(install\b[^\n]*?\sdist\/upcase\s+)\/usr\/local\/bin\/upcase/,
        "$1/opt/upcase",
        "README installs /opt/upcase",
      ],
      [
        "unit stop timeout",
        "unit",
        "TimeoutStopSec=40",
        "TimeoutStopSec=20",
        "TimeoutStopSec 20 is not longer than --drain-timeout 25",
      ],
      [
        "unit drain timeout only",
        "unit",
        "--drain-timeout 25",
        "--drain-timeout 60",
        "is not longer than --drain-timeout 60",
      ],
      [
        "W^X memory",
        "unit",
        "LockPersonality=yes",
        "LockPersonality=yes\nMemoryDenyWriteExecute=yes",
        "MemoryDenyWriteExecute breaks V8",
      ],
      [
        "fd limit",
        "unit",
        "LimitNOFILE=20000",
        "LimitNOFILE=1024",
        "LimitNOFILE 1024 is not above --max-connections 10000",
      ],
      [
        "privileged port",
        "unit",
        "--port 7000",
        "--port 700",
        "port 700 needs CAP_NET_BIND_SERVICE",
      ],
      [
        "compile task runs another path",
        "denoJson",
        "--allow-run=/usr/local/bin/upcase",
        "--allow-run=/opt/upcase",
        "compile's --allow-run=/opt/upcase is not README's install path /usr/local/bin/upcase",
      ],
      [
        "compile task runs anything",
        "denoJson",
        "--allow-run=/usr/local/bin/upcase",
        "--allow-run",
        "compile grants --allow-run without a scope",
      ],
      [
        "compile task reaches any host",
        "denoJson",
        /--allow-net=\S+/,
        "--allow-net",
        "compile grants --allow-net without a scope",
      ],
      [
        "compile task's hosts only",
        "denoJson",
        ",localhost ",
        " ",
        "is not COMPILED_NET_HOSTS",
      ],
      [
        "unit listens where the binary may not",
        "unit",
        "--host 0.0.0.0",
        "--host 10.0.0.5",
        "the compiled binary cannot use --host 10.0.0.5",
      ],
      [
        "k8s admin where the binary may not",
        "deployment",
        "0.0.0.0:9090",
        "10.0.0.5:9090",
        "the compiled binary cannot use --admin 10.0.0.5",
      ],
      [
        "version bump without the image",
        "denoJson",
        /"version": "[^"]+"/,
        '"version": "9.9.9"',
        "is not tagged 9.9.9",
      ],
    ];
  for (const [name, file, from, to, expected] of cases) {
    const mutated = { ...files, [file]: replaceOnce(files[file], from, to) };
    const problems = [
      ...checkKubernetes(mutated),
      ...checkNetworkPolicy(mutated),
      ...checkUnit(mutated),
      ...checkCompileTask(mutated),
    ];
    assert(
      problems.some((p) => p.includes(expected)),
      `${name}: expected a problem with "${expected}", got ${
        JSON.stringify(problems)
      }`,
    );
  }
});

const PYTHON = "/usr/bin/python3";
async function hasPyYaml(): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(PYTHON, {
      args: ["-c", "import yaml"],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0;
  } catch {
    return false;
  }
}
const pyYaml = await hasPyYaml();

Deno.test({
  name: pyYaml
    ? "parseYaml agrees with PyYAML on the manifests"
    : "parseYaml agrees with PyYAML on the manifests (skipped: python3-yaml not installed)",
  ignore: !pyYaml,
  async fn() {
    for (
      const file of ["deployment.yaml", "service.yaml", "networkpolicy.yaml"]
    ) {
      const path = `${ROOT}deploy/k8s/${file}`;
      const out = await new Deno.Command(PYTHON, {
        args: [
          "-c",
          "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
          path,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      assertEquals(
        parseYaml(await Deno.readTextFile(path)),
        JSON.parse(new TextDecoder().decode(out.stdout)),
      );
    }
  },
});
