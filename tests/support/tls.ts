/**
 * Throwaway certificates for HTTPS tests, made by `openssl` in a temporary directory: a CA the
 * test trusts and a server certificate it signed for the loopback names (`127.0.0.1`, `::1`,
 * `localhost`), plus the certificates a client must refuse — one from a second CA nobody
 * trusts, one expired, one for another host name.
 *
 * Keys are EC P-256 in PKCS#8 PEM (`BEGIN PRIVATE KEY`), which `Deno.serve`, distribution (Go),
 * curl and `node:https` all read. Server certificates carry `subjectAltName`,
 * `basicConstraints CA:FALSE`, `keyUsage digitalSignature` and `extendedKeyUsage serverAuth`, as
 * rustls (Deno's TLS) requires; the CAs carry `basicConstraints CA:TRUE`.
 *
 * @module
 */
import { assertPeer } from "../../peers/available.ts";

/** A certificate with its private key, as files and as PEM text. */
export interface CertificateFiles {
  /** Path of the PEM certificate. */
  certPath: string;
  /** Path of the PEM private key (PKCS#8). */
  keyPath: string;
  /** The PEM certificate. */
  cert: string;
  /** The PEM private key. */
  key: string;
}

/** Everything {@linkcode makeTestTls} made; dispose of it to remove the files. */
export interface TestTls extends AsyncDisposable {
  /** The temporary directory holding the files. */
  dir: string;
  /** The CA tests trust: give `ca.certPath` to `DENO_CERT`, `curl --cacert`, `--ca-file`. */
  ca: CertificateFiles;
  /** Signed by `ca` for `127.0.0.1`, `::1` and `localhost`, valid for a day. */
  server: CertificateFiles;
  /** A second CA that nothing trusts. */
  untrustedCa: CertificateFiles;
  /** Signed by `untrustedCa` for the same names as `server`: a client must refuse it. */
  untrustedServer: CertificateFiles;
  /** Signed by `ca` for the same names, but its validity ended a day before it began. */
  expiredServer: CertificateFiles;
  /** Signed by `ca`, valid, but only for `wrong-host.invalid`. */
  wrongHostServer: CertificateFiles;
  /** Removes the directory. Safe to call twice. */
  remove(): Promise<void>;
}

/** The loopback names the server certificates are for. */
export const LOOPBACK_NAMES: readonly string[] = [
  "IP:127.0.0.1",
  "IP:::1",
  "DNS:localhost",
];

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `Cannot run openssl ${args.join(" ")}: it exited with code ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
}

async function newKey(keyPath: string): Promise<void> {
  await openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    keyPath,
  ]);
}

async function readPair(
  certPath: string,
  keyPath: string,
): Promise<CertificateFiles> {
  return {
    certPath,
    keyPath,
    cert: await Deno.readTextFile(certPath),
    key: await Deno.readTextFile(keyPath),
  };
}

/** A self-signed CA certificate (`openssl req -x509` adds `CA:TRUE`). */
async function makeCa(dir: string, name: string): Promise<CertificateFiles> {
  const keyPath = `${dir}/${name}.key`;
  const certPath = `${dir}/${name}.pem`;
  await newKey(keyPath);
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    keyPath,
    "-subj",
    `/CN=oci test ${name} ${crypto.randomUUID().slice(0, 8)}`,
    "-days",
    "2",
    "-out",
    certPath,
  ]);
  return readPair(certPath, keyPath);
}

/** A server certificate signed by `ca`; `days: -1` makes one that has already expired. */
async function makeServer(
  dir: string,
  name: string,
  ca: CertificateFiles,
  subjectAltNames: readonly string[],
  days: number,
): Promise<CertificateFiles> {
  const keyPath = `${dir}/${name}.key`;
  const certPath = `${dir}/${name}.pem`;
  const csrPath = `${dir}/${name}.csr`;
  const extPath = `${dir}/${name}.ext`;
  await newKey(keyPath);
  await Deno.writeTextFile(
    extPath,
    [
      `subjectAltName=${subjectAltNames.join(",")}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  const commonName = subjectAltNames[0].replace(/^(IP|DNS):/, "");
  await openssl([
    "req",
    "-new",
    "-key",
    keyPath,
    "-subj",
    `/CN=${commonName}`,
    "-out",
    csrPath,
  ]);
  const serial = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await openssl([
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    ca.certPath,
    "-CAkey",
    ca.keyPath,
    "-set_serial",
    `0x7${serial.slice(1)}`,
    "-days",
    String(days),
    "-extfile",
    extPath,
    "-out",
    certPath,
  ]);
  await Deno.remove(csrPath);
  await Deno.remove(extPath);
  return readPair(certPath, keyPath);
}

/**
 * Makes a CA, a server certificate it signed for the loopback names, and the certificates a
 * client must refuse (another CA's, expired, wrong host), in a new temporary directory.
 *
 * @returns The files and their PEM text; dispose of it (or call `remove`) to delete them.
 * @throws {Error} When `openssl` is missing or fails.
 *
 * @example Serve HTTPS with the server certificate and trust its CA
 * ```ts
 * import assert from "node:assert/strict";
 * import { peerAvailable } from "../../peers/available.ts";
 * import { makeTestTls } from "./tls.ts";
 *
 * if (peerAvailable("openssl")) {
 *   await using tls = await makeTestTls();
 *   await using server = Deno.serve(
 *     { hostname: "127.0.0.1", port: 0, cert: tls.server.cert, key: tls.server.key, onListen() {} },
 *     () => new Response("hello"),
 *   );
 *   using client = Deno.createHttpClient({ caCerts: [tls.ca.cert] });
 *   const response = await fetch(`https://127.0.0.1:${server.addr.port}/`, { client });
 *   assert.equal(await response.text(), "hello");
 * }
 * ```
 */
export async function makeTestTls(): Promise<TestTls> {
  assertPeer("openssl");
  const dir = await Deno.makeTempDir({ prefix: "oci-tls-" });
  let removing: Promise<void> | undefined;
  const remove = () =>
    removing ??= Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    const ca = await makeCa(dir, "ca");
    const untrustedCa = await makeCa(dir, "untrusted-ca");
    const [server, untrustedServer, expiredServer, wrongHostServer] =
      await Promise.all([
        makeServer(dir, "server", ca, LOOPBACK_NAMES, 1),
        makeServer(dir, "untrusted-server", untrustedCa, LOOPBACK_NAMES, 1),
        makeServer(dir, "expired-server", ca, LOOPBACK_NAMES, -1),
        makeServer(dir, "wrong-host-server", ca, [
          "DNS:wrong-host.invalid",
        ], 1),
      ]);
    return {
      dir,
      ca,
      server,
      untrustedCa,
      untrustedServer,
      expiredServer,
      wrongHostServer,
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** Options of {@linkcode serveHttps}. */
export interface ServeHttpsOptions {
  /** The server certificate and key (PEM text), e.g. `tls.server`. */
  certificate: Pick<CertificateFiles, "cert" | "key">;
  /** Interface to listen on. @default {"127.0.0.1"} */
  hostname?: string;
}

/** A running HTTPS server. */
export interface HttpsServer extends AsyncDisposable {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, for `oci://HOST/…` references (HTTPS even on loopback). */
  host: string;
  /** Stops the server. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Serves a handler over HTTPS on a free loopback port with `Deno.serve({ cert, key })`; with
 * `createRegistry()` from `src/server/handler.ts` that is the embedded registry behind TLS.
 *
 * @param handler Answers each request.
 * @param options The certificate to present.
 * @returns The running server; dispose of it (or call `stop`) to stop it.
 *
 * @example The embedded registry over HTTPS
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistry } from "../../src/server/handler.ts";
 * import { peerAvailable } from "../../peers/available.ts";
 * import { makeTestTls, serveHttps } from "./tls.ts";
 *
 * if (peerAvailable("openssl")) {
 *   await using tls = await makeTestTls();
 *   await using registry = serveHttps(createRegistry(), { certificate: tls.server });
 *   using client = Deno.createHttpClient({ caCerts: [tls.ca.cert] });
 *   const response = await fetch(`${registry.url}/v2/`, { client });
 *   await response.body?.cancel();
 *   assert.equal(response.status, 200);
 * }
 * ```
 */
export function serveHttps(
  handler: (request: Request) => Response | Promise<Response>,
  options: ServeHttpsOptions,
): HttpsServer {
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: 0,
    cert: options.certificate.cert,
    key: options.certificate.key,
    onListen() {},
  }, handler);
  const hostname = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  const host = `${hostname}:${server.addr.port}`;
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= server.shutdown();
  return {
    url: `https://${host}`,
    host,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
