import { getLogger } from "@logtape/logtape";
import { formatAddr } from "../common/format_addr.ts";
import type { CidrSet } from "../proxy/cidr.ts";
import { clientKey } from "../proxy/ip_address.ts";
import type { Conn } from "../transport/types.ts";
import { AddressLimit } from "./address_limit.ts";
import type { Admission, SharedLimits } from "./shared_limits.ts";
import type { ServerStats } from "./stats.ts";

const log = getLogger(["upcase", "server"]);

// Refusals over the per-address limit, and connections from sources not
// trusted to send a PROXY header, are logged at most this often.
const REFUSAL_LOG_INTERVAL_MS = 1000;

/** Options for {@linkcode AdmissionControl}. */
export interface AdmissionControlOptions {
  /** Whether a PROXY header comes first. */
  proxyProtocol: boolean;
  /** The sources allowed to send one. */
  proxyTrusted: CidrSet;
  /** Most connections per client address (0: no limit). */
  maxConnectionsPerIp: number;
  /** The bits of an IPv6 address that name one client. */
  ipv6Prefix: number;
  /** The whole server's limits, with `--workers`; else this server's own. */
  sharedLimits?: SharedLimits | undefined;
  /** Where refusals and rejections are counted. */
  stats: ServerStats;
}

/** What {@linkcode AdmissionControl.check} decided for a new connection. */
export type Check =
  | { untrusted: true }
  | {
    untrusted?: false;
    /** The per-address key the connection's slot is counted under. */
    counted: string | undefined;
    /** The limits' answer, now or later. */
    admission: Admission | Promise<Admission>;
  };

/**
 * Who may be served: PROXY trust, the per-address limit (this server's own,
 * or the whole server's with `--workers`), and the warnings for those
 * turned away, at most one a second for each kind.
 */
export class AdmissionControl {
  readonly #options: AdmissionControlOptions;
  readonly #limits: Pick<
    SharedLimits,
    "acquire" | "acquireAddress" | "release"
  >;
  readonly #refused: ThrottledWarning;
  readonly #untrusted: ThrottledWarning;

  /**
   * @param options Trust, limits, and where to count.
   */
  constructor(options: AdmissionControlOptions) {
    this.#options = options;
    this.#limits = options.sharedLimits ??
      ownLimits(options.maxConnectionsPerIp);
    const limit = options.maxConnectionsPerIp;
    this.#refused = new ThrottledWarning((count, peer) =>
      log.warning(
        "refused {refused} connections over the limit of {limit} per address (latest from {peer})",
        { refused: count, limit, peer },
      )
    );
    this.#untrusted = new ThrottledWarning((count, peer) =>
      log.warning(
        "rejected {untrusted} connections from sources not trusted to send a PROXY header (latest from {peer})",
        { untrusted: count, peer },
      )
    );
  }

  /**
   * Decides at accept, before a byte is read: an untrusted PROXY source is
   * turned away; otherwise the limits answer. Behind a balancer the
   * per-address limit waits for the real address, which the connection's
   * own task reads, so a slow header never holds up accept.
   *
   * @param conn The accepted connection.
   * @returns the decision.
   */
  check(conn: Conn): Check {
    const { proxyProtocol, proxyTrusted } = this.#options;
    // Unix peers have no address to count by.
    const remote = conn.remoteAddr;
    const host = "hostname" in remote ? remote.hostname : undefined;
    if (proxyProtocol && host !== undefined && !proxyTrusted.has(host)) {
      return { untrusted: true };
    }
    const counted = proxyProtocol || host === undefined
      ? undefined
      : this.keyOf(host);
    return { counted, admission: this.#limits.acquire(counted) };
  }

  /**
   * The key a per-address slot is counted under; none without that limit,
   * so that the default path parses no address.
   *
   * @param host The client's host.
   * @returns the key, or undefined when nothing is counted.
   */
  keyOf(host: string): string | undefined {
    const { maxConnectionsPerIp, ipv6Prefix } = this.#options;
    return maxConnectionsPerIp > 0 ? clientKey(host, ipv6Prefix) : undefined;
  }

  /**
   * Takes a slot for the real client a PROXY header named.
   *
   * @param key Its per-address key.
   * @returns whether it may be served, now or later.
   */
  acquireAddress(key: string): boolean | Promise<boolean> {
    return this.#limits.acquireAddress(key);
  }

  /**
   * Gives back a per-address slot.
   *
   * @param key The key it was counted under, if any.
   */
  release(key: string | undefined): void {
    this.#limits.release(key);
  }

  /**
   * Closes a connection from a source not trusted to send a PROXY header,
   * before anything is read: its header, true or not, must not decide
   * which address the server believes.
   *
   * @param conn The connection.
   */
  rejectUntrusted(conn: Conn): void {
    const peer = formatAddr(conn.remoteAddr);
    closeQuietly(conn);
    this.#options.stats.proxyRejected("untrusted");
    this.#untrusted.note(peer);
  }

  /**
   * Closes a connection over the per-address limit, and counts it.
   *
   * @param conn The connection.
   */
  refuse(conn: Conn): void {
    const peer = formatAddr(conn.remoteAddr);
    closeQuietly(conn);
    this.countRefusal(peer);
  }

  /**
   * Counts a refusal over the per-address limit.
   *
   * @param peer The client, for the warning.
   */
  countRefusal(peer: string): void {
    this.#options.stats.refused++;
    this.#refused.note(peer);
  }
}

/**
 * Closes a connection the server gives up on, which may have failed already.
 *
 * @param conn The connection.
 */
export function closeQuietly(conn: Conn): void {
  try {
    conn.close();
  } catch {
    // Nothing to release.
  }
}

// A count of events, logged with the latest one at most once an interval.
class ThrottledWarning {
  readonly #warn: (count: number, peer: string) => void;
  #count = 0;
  #loggedAt = -Infinity;

  constructor(warn: (count: number, peer: string) => void) {
    this.#warn = warn;
  }

  note(peer: string): void {
    this.#count++;
    const now = performance.now();
    if (now - this.#loggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.#warn(this.#count, peer);
    this.#count = 0;
    this.#loggedAt = now;
  }
}

// This server's own per-address limit, in the shape of the shared one; its
// own maxConnections pauses the accept loop instead.
function ownLimits(
  max: number,
): Pick<SharedLimits, "acquire" | "acquireAddress" | "release"> {
  const perAddress = new AddressLimit(max);
  return {
    acquire: (host) =>
      host === undefined || perAddress.acquire(host) ? "admitted" : "refused",
    acquireAddress: (host) => perAddress.acquire(host),
    release(host) {
      if (host !== undefined) perAddress.release(host);
    },
  };
}
