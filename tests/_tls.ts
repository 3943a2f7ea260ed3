/**
 * Certificates for the TLS tests, made with openssl in a temporary folder.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { TlsPem } from "../src/tls/pem.ts";

const decoder = new TextDecoder();

/** A certificate made for one test, and where its files are. */
export interface TestCert extends TlsPem {
  certFile: string;
  keyFile: string;
}

/**
 * Makes a self-signed P-256 certificate for 127.0.0.1 and localhost with
 * openssl. It is marked as no CA (`CA:FALSE`): rustls, behind Deno's TLS
 * client, refuses a CA certificate as a server's own.
 */
export async function makeCert(dir: string, cn: string): Promise<TestCert> {
  const certFile = `${dir}/${cn}.crt.pem`;
  const keyFile = `${dir}/${cn}.key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdin: "null",
  }).output();
  assertEquals(out.code, 0, decoder.decode(out.stderr));
  return {
    certFile,
    keyFile,
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
  };
}

/** A temporary folder, removed when the test is done with it. */
export async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "upcase_tls_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}
