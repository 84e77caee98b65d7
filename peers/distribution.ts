/**
 * Starts the real CNCF distribution registry (Debian's `docker-registry`, 2.8.x) on a free
 * loopback port with its storage in a temporary directory, optionally with htpasswd (bcrypt)
 * Basic auth or token auth (see `token_server.ts` for what its token auth checks).
 *
 * What distribution 2.8.2 answers, for tests that look at the wire:
 * - Every response carries `Docker-Distribution-Api-Version: registry/2.0`.
 * - htpasswd: 401 with `WWW-Authenticate: Basic realm="<realm>"` and a body
 *   `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`,
 *   for a missing and a wrong password alike.
 * - token: 401 with `WWW-Authenticate: Bearer realm="…",service="…"` (plus `scope` and `error`,
 *   see `token_server.ts`) and a body whose `detail` lists the access needed.
 *
 * @module
 */
import { assertPeer, freePort } from "./available.ts";
import {
  startTokenServer,
  type TokenServer,
  type TokenServerOptions,
} from "./token_server.ts";

/** Token auth settings of the registry (its `auth.token` section). */
export interface DistributionTokenAuth {
  /** Where clients get tokens (`Bearer realm`). */
  realm: string;
  /** The service name: the challenge's `service` and the audience tokens must have. */
  service: string;
  /** The issuer tokens must have. */
  issuer: string;
  /** Path of the PEM certificates the token signing key must chain to. */
  rootCertBundle: string;
}

/** Options of {@linkcode startDistribution}. */
export interface DistributionOptions {
  /** Basic auth (user to password, stored as bcrypt htpasswd entries) or token auth. */
  auth?:
    | { htpasswd: Record<string, string> }
    | { token: DistributionTokenAuth };
  /** Short for `auth: { htpasswd }`. */
  htpasswd?: Record<string, string>;
  /** Whether manifests and blobs can be deleted (`storage.delete.enabled`). @default {true} */
  deleteEnabled?: boolean;
  /** `log.level`; `info` shows why a token was refused. @default {"info"} */
  logLevel?: "error" | "warn" | "info" | "debug";
  /**
   * More settings as distribution's environment overrides, which win over the config file:
   * `{ REGISTRY_HTTP_RELATIVEURLS: "true" }` sets `http.relativeurls`.
   */
  env?: Record<string, string>;
  /** How long to wait for `GET /v2/` to answer, in milliseconds. @default {15000} */
  startTimeout?: number;
  /**
   * Serve HTTPS (`http.tls.certificate` and `http.tls.key`) instead of plain HTTP: the
   * certificate and key files (`makeTestTls().server` fits) and the PEM of the CA that signed
   * them, which the start-up check trusts.
   */
  tls?: DistributionTls;
}

/** The certificate distribution serves HTTPS with. */
export interface DistributionTls {
  /** Path of the PEM server certificate (its chain, if any, after it). */
  certPath: string;
  /** Path of its PEM private key. */
  keyPath: string;
  /** PEM of the CA the certificate chains to. */
  caCert: string;
}

/** A running registry. */
export interface Distribution extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` with `tls`. */
  url: string;
  /** `127.0.0.1:PORT` (with `tls`, reach it as `oci://127.0.0.1:PORT/…`: HTTPS on loopback). */
  host: string;
  /** The storage root directory (`storage.filesystem.rootdirectory`). */
  root: string;
  /** What the registry printed so far, the last 256 KiB (also after it stopped). */
  logs(): string;
  /** Stops the registry, waits for it to exit and removes its files. Safe to call twice. */
  stop(): Promise<void>;
}

/** A token server and a registry that trusts it, stopped together. */
export interface TokenRegistry extends AsyncDisposable {
  /** The registry, configured with the token server's realm, service, issuer and certificate. */
  registry: Distribution;
  /** The token server. */
  tokens: TokenServer;
  /** Stops both. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startTokenRegistry}: the token server's, and the registry's. */
export interface TokenRegistryOptions extends TokenServerOptions {
  /** Registry settings other than auth. */
  distribution?: Omit<DistributionOptions, "auth" | "htpasswd">;
}

const MAX_LOG = 256 * 1024;
const START_ATTEMPTS = 3;

/** Keeps the last `MAX_LOG` characters written to it. */
function boundedLog(): { append(text: string): void; text(): string } {
  let chunks: string[] = [];
  let length = 0;
  return {
    append(text) {
      chunks.push(text);
      length += text.length;
      if (length > 2 * MAX_LOG) {
        const joined = chunks.join("").slice(-MAX_LOG);
        chunks = [joined];
        length = joined.length;
      }
    },
    text() {
      return chunks.join("").slice(-MAX_LOG);
    },
  };
}

async function htpasswdFile(users: Record<string, string>): Promise<string> {
  assertPeer("htpasswd");
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    if (user === "" || user.includes(":")) {
      throw new TypeError(
        `Cannot write an htpasswd entry for user ${
          JSON.stringify(user)
        }: it is empty or contains ':'`,
      );
    }
    // -i reads the password from stdin, keeping it out of the process list.
    const child = new Deno.Command("htpasswd", {
      args: ["-niB", user],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(password));
    await writer.close();
    const out = await child.output();
    if (out.code !== 0) {
      throw new Error(
        `Cannot write an htpasswd entry for user ${
          JSON.stringify(user)
        }: htpasswd exited with code ${out.code}: ${
          new TextDecoder().decode(out.stderr).trim()
        }`,
      );
    }
    lines.push(new TextDecoder().decode(out.stdout).trim());
  }
  return lines.join("\n") + "\n";
}

/** The config file; strings are written as JSON, which YAML reads as double-quoted scalars. */
function configYaml(
  dir: string,
  port: number,
  options: DistributionOptions,
  auth: string,
): string {
  const q = JSON.stringify;
  const tls = options.tls === undefined ? "" : `  tls:
    certificate: ${q(options.tls.certPath)}
    key: ${q(options.tls.keyPath)}
`;
  return `version: 0.1
log:
  level: ${options.logLevel ?? "info"}
  formatter: text
storage:
  filesystem:
    rootdirectory: ${q(`${dir}/data`)}
  delete:
    enabled: ${options.deleteEnabled ?? true}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${q(`127.0.0.1:${port}`)}
  secret: ${q(crypto.randomUUID())}
${tls}${auth}`;
}

function authYaml(dir: string, options: DistributionOptions): string {
  const q = JSON.stringify;
  const auth = options.auth;
  if (auth && "token" in auth) {
    const { realm, service, issuer, rootCertBundle } = auth.token;
    return `auth:
  token:
    realm: ${q(realm)}
    service: ${q(service)}
    issuer: ${q(issuer)}
    rootcertbundle: ${q(rootCertBundle)}
`;
  }
  if ((auth && "htpasswd" in auth) || options.htpasswd) {
    return `auth:
  htpasswd:
    realm: "oci-test"
    path: ${q(`${dir}/htpasswd`)}
`;
  }
  return "";
}

/** Sends `GET /v2/` once (trusting `caCert` for HTTPS): the status, or undefined when nothing answered. */
async function probe(
  url: string,
  caCert: string | undefined,
): Promise<number | undefined> {
  const client = caCert === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [caCert] });
  try {
    const response = await fetch(`${url}/v2/`, {
      client,
      signal: AbortSignal.timeout(1000),
    });
    await response.body?.cancel();
    return response.status;
  } catch {
    // Not listening yet.
    return undefined;
  } finally {
    client?.close();
  }
}

/** One attempt on one port: the running registry, or why it did not start. */
async function launch(
  dir: string,
  options: DistributionOptions,
  auth: string,
): Promise<Distribution | { failure: string; portTaken: boolean }> {
  const port = freePort();
  const configPath = `${dir}/config.yml`;
  await Deno.writeTextFile(configPath, configYaml(dir, port, options, auth));
  const child = new Deno.Command("docker-registry", {
    args: ["serve", configPath],
    // Only our settings: stray REGISTRY_* variables would override the config file.
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = boundedLog();
  async function collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      log.append(text);
    }
  }
  const collecting = Promise.all([
    collect(child.stdout),
    collect(child.stderr),
  ]);
  let exited: Deno.CommandStatus | undefined;
  const exit = child.status.then((status) => (exited = status));

  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      if (exited === undefined) {
        try {
          child.kill("SIGTERM");
        } catch {
          // It exited in between.
        }
        // Distribution 2.8 shuts down at once without http.draintimeout; SIGKILL if it hangs.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          exit,
          new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
        ]);
        clearTimeout(timer);
        if (exited === undefined) {
          try {
            child.kill("SIGKILL");
          } catch {
            // It exited in between.
          }
        }
      }
      await exit;
      await collecting;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
    return stopping;
  }

  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const timeout = options.startTimeout ?? 15_000;
  const deadline = Date.now() + timeout;
  for (;;) {
    if (exited !== undefined) {
      await collecting;
      const logs = log.text();
      return {
        failure: `it exited with code ${exited.code}\n${logs}`,
        portTaken: /address already in use/.test(logs),
      };
    }
    const status = await probe(url, options.tls?.caCert);
    if (status === 200 || status === 401) break;
    if (Date.now() > deadline) {
      // The caller's error quotes the logs; stop() keeps them and removes only the files.
      const logs = log.text();
      await stop();
      return {
        failure:
          `GET ${url}/v2/ did not answer 200 or 401 within ${timeout} ms\n${logs}`,
        portTaken: false,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    root: `${dir}/data`,
    logs: () => log.text(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Starts distribution with a config file of its own in a temporary directory (filesystem
 * storage there, deletes enabled, `info` logs kept in memory, a random `http.secret`, no health
 * checks, cache or redis) and waits until `GET /v2/` answers 200 or 401. A port taken between
 * choosing and binding it is retried on another.
 *
 * @param options Auth, HTTPS (`tls`) and other settings.
 * @returns The running registry; dispose of it (or call `stop`) to stop it.
 * @throws {Error} When `docker-registry` (or `htpasswd`) is missing, or the registry does not
 * start; the message quotes what the registry printed.
 *
 * @example Start an anonymous registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { startDistribution } from "./distribution.ts";
 * import { peerAvailable } from "./available.ts";
 *
 * if (peerAvailable("docker-registry")) {
 *   await using registry = await startDistribution();
 *   const response = await fetch(`${registry.url}/v2/`);
 *   await response.body?.cancel();
 *   assert.equal(response.status, 200);
 * }
 * ```
 */
export async function startDistribution(
  options: DistributionOptions = {},
): Promise<Distribution> {
  assertPeer("docker-registry");
  const users = options.auth && "htpasswd" in options.auth
    ? options.auth.htpasswd
    : options.htpasswd;
  let failure = "";
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const dir = await Deno.makeTempDir({ prefix: "oci-distribution-" });
    let started: Awaited<ReturnType<typeof launch>>;
    try {
      if (users) {
        await Deno.writeTextFile(`${dir}/htpasswd`, await htpasswdFile(users));
      }
      started = await launch(dir, options, authYaml(dir, options));
    } catch (error) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
    if ("url" in started) return started;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    failure = started.failure;
    if (!started.portTaken) break;
  }
  throw new Error(`Cannot start docker-registry: ${failure}`);
}

/**
 * Starts a token server and a distribution registry configured for it.
 *
 * @param options The token server's options, and `distribution` for the registry's.
 * @returns Both; disposing of the pair stops both.
 * @throws {Error} When a peer is missing or either does not start.
 *
 * @example Log in with Basic credentials and use the token
 * ```ts
 * import assert from "node:assert/strict";
 * import { startTokenRegistry } from "./distribution.ts";
 * import { peerAvailable } from "./available.ts";
 *
 * if (peerAvailable("docker-registry") && peerAvailable("openssl")) {
 *   await using setup = await startTokenRegistry({ users: { bob: "secret" } });
 *   const { registry, tokens } = setup;
 *   const got = await fetch(`${tokens.realm}?service=${tokens.service}`, {
 *     headers: { authorization: `Basic ${btoa("bob:secret")}` },
 *   });
 *   const { token } = await got.json();
 *   const response = await fetch(`${registry.url}/v2/`, {
 *     headers: { authorization: `Bearer ${token}` },
 *   });
 *   await response.body?.cancel();
 *   assert.equal(response.status, 200);
 * }
 * ```
 */
export async function startTokenRegistry(
  options: TokenRegistryOptions = {},
): Promise<TokenRegistry> {
  const { distribution, ...tokenOptions } = options;
  const tokens = await startTokenServer(tokenOptions);
  let registry: Distribution;
  try {
    registry = await startDistribution({
      ...distribution,
      auth: {
        token: {
          realm: tokens.realm,
          service: tokens.service,
          issuer: tokens.issuer,
          rootCertBundle: tokens.certPath,
        },
      },
    });
  } catch (error) {
    await tokens.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      try {
        await registry.stop();
      } finally {
        await tokens.stop();
      }
    })();
    return stopping;
  }
  return { registry, tokens, stop, [Symbol.asyncDispose]: stop };
}
