/**
 * Starts the real CNCF distribution registry (Debian's `docker-registry`, 2.8.x) on a free
 * loopback port with its storage in a temporary directory, optionally with htpasswd (bcrypt)
 * Basic auth or token auth.
 *
 * @module
 */
import { assertPeer, freePort } from "./peers.ts";
import {
  startTokenServer,
  type TokenServer,
  type TokenServerOptions,
} from "./token_server.ts";

/** Options of {@linkcode startDistribution}. */
export interface DistributionOptions {
  /** Basic auth: users and passwords, stored as bcrypt htpasswd entries. */
  htpasswd?: Record<string, string>;
  /** Token auth: the token server's realm, service, issuer and certificate. */
  token?: { realm: string; service: string; issuer: string; certPath: string };
}

/** A running registry. */
export interface Distribution extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** The storage directory. */
  root: string;
  /** What the registry printed so far (bounded). */
  logs(): string;
  /** Stops it and removes its files. */
  stop(): Promise<void>;
}

const MAX_LOG = 256 * 1024;

async function htpasswdEntries(users: Record<string, string>): Promise<string> {
  assertPeer("htpasswd");
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    const out = await new Deno.Command("htpasswd", {
      args: ["-nbB", user, password],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new Error(
        `htpasswd failed: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    lines.push(new TextDecoder().decode(out.stdout).trim());
  }
  return lines.join("\n") + "\n";
}

/** Starts distribution and waits until `GET /v2/` answers. */
export async function startDistribution(
  options: DistributionOptions = {},
): Promise<Distribution> {
  assertPeer("docker-registry");
  const dir = await Deno.makeTempDir({ prefix: "oci-distribution-" });
  const port = freePort();
  let auth = "";
  if (options.htpasswd) {
    await Deno.writeTextFile(
      `${dir}/htpasswd`,
      await htpasswdEntries(options.htpasswd),
    );
    auth = `auth:
  htpasswd:
    realm: oci-test
    path: ${dir}/htpasswd
`;
  } else if (options.token) {
    auth = `auth:
  token:
    realm: ${options.token.realm}
    service: ${options.token.service}
    issuer: ${options.token.issuer}
    rootcertbundle: ${options.token.certPath}
`;
  }
  await Deno.writeTextFile(
    `${dir}/config.yml`,
    `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dir}/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: oci-test-secret
${auth}`,
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", `${dir}/config.yml`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      log = (log + chunk).slice(-MAX_LOG);
    }
  };
  const collecting = Promise.all([
    collect(child.stdout),
    collect(child.stderr),
  ]);
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
    await collecting;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not start on ${url}:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    root: `${dir}/data`,
    logs: () => log,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A token server and a registry that trusts it, stopped together. */
export interface TokenRegistry extends AsyncDisposable {
  registry: Distribution;
  tokens: TokenServer;
}

/** Starts a token server and a distribution registry configured for it. */
export async function startTokenRegistry(
  options: TokenServerOptions = {},
): Promise<TokenRegistry> {
  const tokens = await startTokenServer(options);
  let registry: Distribution;
  try {
    registry = await startDistribution({ token: tokens });
  } catch (error) {
    await tokens.stop();
    throw error;
  }
  return {
    registry,
    tokens,
    async [Symbol.asyncDispose]() {
      await registry.stop();
      await tokens.stop();
    },
  };
}
