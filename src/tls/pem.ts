import { createPrivateKey, X509Certificate } from "node:crypto";
import { errorMessage } from "../common/error_message.ts";

/** A certificate chain and its private key, in PEM, as `Deno.listenTls` takes them. */
export interface TlsPem {
  /** The certificate chain, leaf first. */
  cert: string;
  /** The private key of the leaf certificate. */
  key: string;
}

/** What a checked certificate says about itself, for the logs. */
export interface TlsCertInfo {
  /** The leaf certificate's subject, such as `CN=example.com`. */
  subject: string;
  /** When the leaf certificate expires. */
  validTo: Date;
}

/** How {@linkcode checkTlsPem} names the two parts in its messages. */
export interface TlsPemLabels {
  /**
   * The certificate's name.
   *
   * @default {"the certificate"}
   */
  cert?: string;
  /**
   * The private key's name.
   *
   * @default {"the private key"}
   */
  key?: string;
}

// The blocks that rustls, behind Deno.listenTls, takes from the files; other
// text around them (openssl's "Bag Attributes", comments) is ignored there too.
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/;
const KEY_BLOCK =
  /-----BEGIN (RSA |EC )?PRIVATE KEY-----[^-]+-----END \1?PRIVATE KEY-----/;

function firstLine(err: unknown): string {
  return errorMessage(err).split("\n")[0]!;
}

/**
 * Checks that `pem` holds a certificate and the private key that belongs to
 * it, before a listener is given them: Deno's own check happens only when a
 * listener opens, and a reload must not close the old listener for a pair
 * that cannot replace it.
 *
 * @param pem The certificate chain and key.
 * @param labels How the messages name the two parts, such as `--tls-cert "c.pem"`.
 * @returns the leaf certificate's subject and expiry.
 * @throws {TypeError} with a one-line message when a part is not PEM, or the
 * key does not belong to the certificate.
 *
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { checkTlsPem } from "./pem.ts";
 *
 * assertThrows(
 *   () => checkTlsPem({ cert: "hello", key: "" }),
 *   TypeError,
 *   "Cannot load the certificate: it is not a PEM certificate",
 * );
 * ```
 */
export function checkTlsPem(
  pem: TlsPem,
  labels: TlsPemLabels = {},
): TlsCertInfo {
  const {
    cert: certLabel = "the certificate",
    key: keyLabel = "the private key",
  } = labels;
  const certBlock = CERT_BLOCK.exec(pem.cert)?.[0];
  if (certBlock === undefined) {
    throw new TypeError(
      `Cannot load ${certLabel}: it is not a PEM certificate (no BEGIN CERTIFICATE block)`,
    );
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certBlock);
  } catch (err) {
    throw new TypeError(
      `Cannot load ${certLabel}: it is not a PEM certificate (${
        firstLine(err)
      })`,
    );
  }
  const keyBlock = KEY_BLOCK.exec(pem.key)?.[0];
  if (keyBlock === undefined) {
    const why = /ENCRYPTED/.test(pem.key)
      ? "it is encrypted; Deno needs an unencrypted key"
      : "no BEGIN PRIVATE KEY block";
    throw new TypeError(
      `Cannot load ${keyLabel}: it is not a PEM private key (${why})`,
    );
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(keyBlock));
  } catch (err) {
    throw new TypeError(
      `Cannot load ${keyLabel}: it is not a PEM private key (${
        firstLine(err)
      })`,
    );
  }
  if (!matches) {
    throw new TypeError(
      `Cannot use ${keyLabel}: it is not the private key of ${certLabel}`,
    );
  }
  return { subject: x509.subject, validTo: new Date(x509.validTo) };
}

function describeReadError(err: unknown, files: string): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (err instanceof Deno.errors.NotCapable) {
    return `reading it is not allowed; run with --allow-read=${files}`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return "permission denied by the file system";
  }
  return firstLine(err);
}

/**
 * Reads the certificate and key files that `--tls-cert` and `--tls-key`
 * name, and checks them with {@linkcode checkTlsPem}.
 *
 * @param certFile The PEM certificate chain's path.
 * @param keyFile The PEM private key's path.
 * @returns the two files' text and what the certificate says.
 * @throws {TypeError} with one line that names the option and the file.
 */
export async function readTlsFiles(
  certFile: string,
  keyFile: string,
): Promise<TlsPem & { info: TlsCertInfo }> {
  const files = `${certFile},${keyFile}`;
  async function read(flag: string, path: string): Promise<string> {
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      throw new TypeError(
        `Cannot load ${flag} "${path}": ${describeReadError(err, files)}`,
      );
    }
  }
  const cert = await read("--tls-cert", certFile);
  const key = await read("--tls-key", keyFile);
  const info = checkTlsPem({ cert, key }, {
    cert: `--tls-cert "${certFile}"`,
    key: `--tls-key "${keyFile}"`,
  });
  return { cert, key, info };
}
