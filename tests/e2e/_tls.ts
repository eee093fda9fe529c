/** A self-signed certificate for localhost and 127.0.0.1, made with openssl (Debian's package). */

import { join } from "@std/path";

const INSTALL_HINT = "apt-get install openssl";

/**
 * Whether the TLS tests run here. Without `openssl` they are skipped with the
 * command that installs it, except in CI, where that is a failure.
 */
export function opensslAvailable(): boolean {
  try {
    const { success } = new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (success) return true;
  } catch {
    // Not installed.
  }
  if (Deno.env.get("CI") === "true") {
    throw new Error(`TLS tests need openssl: run \`${INSTALL_HINT}\``);
  }
  console.warn(`Skipping TLS tests: openssl is missing (\`${INSTALL_HINT}\`)`);
  return false;
}

/** PEM files of a fresh P-256 certificate and its key, in `dir`. */
export async function selfSignedCertificate(
  dir: string,
): Promise<{ certFile: string; keyFile: string; cert: string }> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // A server certificate, not a CA, or TLS clients refuse it as the end entity.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`openssl failed: ${new TextDecoder().decode(stderr)}`);
  return { certFile, keyFile, cert: await Deno.readTextFile(certFile) };
}
