/**
 * Reads an environment variable if permission to read it was granted, and
 * otherwise treats it as unset, so that `--allow-env` stays optional and no
 * prompt interrupts the start.
 *
 * @param name The variable's name.
 * @returns its value, or `undefined` when it is unset or not readable.
 */
export function readEnvIfAllowed(name: string): string | undefined {
  const { state } = Deno.permissions.querySync({ name: "env", variable: name });
  return state === "granted" ? Deno.env.get(name) : undefined;
}

/**
 * Tells whether the process may listen on `host` without a prompt.
 *
 * @param host The address to listen on.
 * @returns true when net permission for it is granted.
 */
export function hasNetPermission(host: string): boolean {
  return Deno.permissions.querySync({ name: "net", host }).state === "granted";
}
