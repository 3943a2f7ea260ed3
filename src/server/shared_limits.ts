/**
 * What limits answer a connection that asks to be served: `admitted`,
 * `refused` (its address is at `maxConnectionsPerIp`; it is closed at once),
 * or `closed` (the limits are gone, as when the server stops).
 */
export type Admission = "admitted" | "refused" | "closed";

/**
 * Connection limits that several processes serving one port share, so that
 * `maxConnections` and `maxConnectionsPerIp` hold for the whole server: the
 * workers of `--workers`, whose supervisor keeps the counts. A server given
 * these applies no limit of its own.
 *
 * Each answer may come at once or later. Until it comes, the server holds
 * the accepted connection unread, which its client cannot tell from waiting
 * in the kernel's backlog.
 */
export interface SharedLimits {
  /**
   * Called before each accept: a promise pauses accepting until it settles,
   * for example while a connection already waits for a slot, so that the
   * next clients wait in the backlog rather than in the process.
   */
  waitForCapacity(): Promise<void> | undefined;
  /**
   * Asks for a slot for a connection just accepted.
   *
   * @param host The client's host, when the per-address limit applies to it
   * now; undefined for a Unix socket client, or behind a load balancer
   * until the PROXY header has named the real client.
   */
  acquire(host: string | undefined): Admission | Promise<Admission>;
  /**
   * Asks for the per-address slot of a connection's real client, once its
   * PROXY header has named it; false closes the connection as refused.
   */
  acquireAddress(host: string): boolean | Promise<boolean>;
  /**
   * Gives back what an admitted connection took.
   *
   * @param host The host whose per-address slot it holds, if any.
   */
  release(host: string | undefined): void;
}
