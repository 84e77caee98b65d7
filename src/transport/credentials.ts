/**
 * Where credentials come from: static values, the environment, Docker's `config.json` with its
 * credential helpers, and chains of these.
 *
 * @module
 */

/** A username and password, or an OAuth2 identity (refresh) token as Docker stores it. */
export type Credentials =
  | { readonly username: string; readonly password: string }
  | { readonly identityToken: string; readonly username?: string };

/**
 * Looks up the credentials for a registry, given by its display name with port
 * (`ghcr.io`, `docker.io`, `127.0.0.1:5000`).
 */
export type CredentialProvider = (
  registry: string,
) => Promise<Credentials | undefined>;

const DOCKER_HUB_NAMES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/** The key Docker uses for Docker Hub in `config.json` and with credential helpers. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

/**
 * Normalises a registry name or a `config.json` key for comparison: no scheme, no path, no
 * trailing slash, lowercase, and every Docker Hub alias as `docker.io`.
 *
 * @param name A registry name or URL.
 * @returns The normalised name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeRegistry } from "./credentials.ts";
 * assert.equal(normalizeRegistry("https://index.docker.io/v1/"), "docker.io");
 * assert.equal(normalizeRegistry("https://GHCR.io"), "ghcr.io");
 * ```
 */
export function normalizeRegistry(name: string): string {
  const host = name.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]
    .toLowerCase();
  return DOCKER_HUB_NAMES.has(host) ? "docker.io" : host;
}

/**
 * Credentials given in code: one set for every registry, or a set per registry.
 *
 * @param credentials The credentials, or a record of them keyed by registry.
 * @returns The provider.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { staticCredentials } from "./credentials.ts";
 * const provider = staticCredentials({ "ghcr.io": { username: "u", password: "p" } });
 * assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
 * assert.equal(await provider("quay.io"), undefined);
 * ```
 */
export function staticCredentials(
  credentials: Credentials | Readonly<Record<string, Credentials>>,
): CredentialProvider {
  if ("password" in credentials || "identityToken" in credentials) {
    const single = credentials as Credentials;
    return () => Promise.resolve(single);
  }
  const byRegistry = new Map(
    Object.entries(credentials as Record<string, Credentials>).map((
      [key, value],
    ) => [normalizeRegistry(key), value]),
  );
  return (registry) =>
    Promise.resolve(byRegistry.get(normalizeRegistry(registry)));
}

/** Reads an environment variable, answering undefined when it is unset or not permitted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Credentials from `OCI_USERNAME` and `OCI_PASSWORD`; when `OCI_REGISTRY` is set, only for
 * that registry. Missing permission to read them counts as unset.
 *
 * @param options Where to read variables (for tests).
 * @returns The provider.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { environmentCredentials } from "./credentials.ts";
 * const env: Record<string, string> = { OCI_USERNAME: "u", OCI_PASSWORD: "p", OCI_REGISTRY: "ghcr.io" };
 * const provider = environmentCredentials({ env: (name) => env[name] });
 * assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
 * assert.equal(await provider("quay.io"), undefined);
 * ```
 */
export function environmentCredentials(
  options: { env?: (name: string) => string | undefined } = {},
): CredentialProvider {
  const env = options.env ?? readEnv;
  return (registry) => {
    const username = env("OCI_USERNAME");
    const password = env("OCI_PASSWORD");
    const only = env("OCI_REGISTRY");
    if (!username || password === undefined) return Promise.resolve(undefined);
    if (only && normalizeRegistry(only) !== normalizeRegistry(registry)) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve({ username, password });
  };
}

/** Runs `docker-credential-<helper> get` with the registry on stdin; undefined when not found. */
export type CredentialHelperRunner = (
  helper: string,
  serverUrl: string,
) => Promise<string | undefined>;

async function runCredentialHelper(
  helper: string,
  serverUrl: string,
): Promise<string | undefined> {
  const program = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new Error(
      `Cannot run credential helper ${program}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(serverUrl));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout).trim();
  if (code === 0) return out;
  if (/credentials not found/i.test(out)) return undefined;
  // Helpers print their own errors; a secret never appears in a failure, but stay short.
  const detail = new TextDecoder().decode(stderr).trim().slice(0, 200) ||
    out.slice(0, 200);
  throw new Error(
    `Credential helper ${program} failed for ${serverUrl} with exit code ${code}${
      detail ? `: ${detail}` : ""
    }`,
  );
}

interface DockerConfig {
  auths?: Record<string, {
    auth?: string;
    username?: string;
    password?: string;
    identitytoken?: string;
  }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Options of {@linkcode dockerConfigCredentials}. */
export interface DockerConfigOptions {
  /**
   * The config file.
   * @default {$DOCKER_CONFIG/config.json, else $HOME/.docker/config.json}
   */
  readonly path?: string;
  /** Where to read `DOCKER_CONFIG` and `HOME` (for tests). */
  readonly env?: (name: string) => string | undefined;
  /** Runs a credential helper (for tests). */
  readonly runHelper?: CredentialHelperRunner;
}

function decodeBasicAuth(value: string, path: string): Credentials {
  let text: string;
  try {
    text = new TextDecoder().decode(
      Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
    );
  } catch {
    throw new SyntaxError(
      `Cannot read credentials from ${path}: an "auth" entry is not base64`,
    );
  }
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new SyntaxError(
      `Cannot read credentials from ${path}: an "auth" entry is not "username:password"`,
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Credentials from Docker's `config.json`: `credHelpers` for the registry first, then its
 * `auths` entry (base64 `auth`, `username`/`password`, or `identitytoken`), then `credsStore`.
 * Helpers run as `docker-credential-<name> get`. A missing file means no credentials.
 *
 * @param options The file, the environment and the helper runner.
 * @returns The provider.
 * @throws {SyntaxError} (from the provider) When the file is not valid JSON; the message names
 * the file and never holds a secret.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dockerConfigCredentials } from "./credentials.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ auths: { "https://ghcr.io": { auth: btoa("u:p") } } }));
 * const provider = dockerConfigCredentials({ path: `${dir}/config.json` });
 * assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function dockerConfigCredentials(
  options: DockerConfigOptions = {},
): CredentialProvider {
  const env = options.env ?? readEnv;
  const runHelper = options.runHelper ?? runCredentialHelper;
  return async (registry) => {
    const dir = env("DOCKER_CONFIG");
    const home = env("HOME");
    const path = options.path ??
      (dir
        ? `${dir}/config.json`
        : home
        ? `${home}/.docker/config.json`
        : undefined);
    if (path === undefined) return undefined;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (
        error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.NotCapable ||
        error instanceof Deno.errors.PermissionDenied
      ) return undefined;
      throw error;
    }
    let config: DockerConfig;
    try {
      config = JSON.parse(text);
    } catch {
      throw new SyntaxError(
        `Cannot read credentials from ${path}: it is not valid JSON`,
      );
    }
    const wanted = normalizeRegistry(registry);
    const serverUrl = wanted === "docker.io" ? DOCKER_HUB_KEY : wanted;
    const helperFor = Object.entries(config.credHelpers ?? {}).find(([key]) =>
      normalizeRegistry(key) === wanted
    )?.[1];
    if (helperFor) return fromHelper(await runHelper(helperFor, serverUrl));
    const entry = Object.entries(config.auths ?? {}).find(([key]) =>
      normalizeRegistry(key) === wanted
    )?.[1];
    if (entry?.identitytoken) {
      return {
        identityToken: entry.identitytoken,
        ...(entry.username ? { username: entry.username } : {}),
      };
    }
    if (entry?.auth) return decodeBasicAuth(entry.auth, path);
    if (entry?.username && entry.password !== undefined) {
      return { username: entry.username, password: entry.password };
    }
    if (config.credsStore) {
      return fromHelper(await runHelper(config.credsStore, serverUrl));
    }
    return undefined;
  };
}

function fromHelper(output: string | undefined): Credentials | undefined {
  if (output === undefined || output === "") return undefined;
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(output);
  } catch {
    throw new SyntaxError("Cannot read a credential helper's answer: not JSON");
  }
  if (typeof parsed.Secret !== "string") return undefined;
  if (parsed.Username === "<token>") return { identityToken: parsed.Secret };
  return {
    username: typeof parsed.Username === "string" ? parsed.Username : "",
    password: parsed.Secret,
  };
}

/**
 * Asks providers in order; the first that has credentials wins.
 *
 * @param providers The providers.
 * @returns The chained provider.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chainCredentials, staticCredentials } from "./credentials.ts";
 * const provider = chainCredentials(
 *   staticCredentials({ "a.io": { username: "a", password: "1" } }),
 *   staticCredentials({ username: "any", password: "2" }),
 * );
 * assert.deepEqual(await provider("a.io"), { username: "a", password: "1" });
 * assert.deepEqual(await provider("b.io"), { username: "any", password: "2" });
 * ```
 */
export function chainCredentials(
  ...providers: CredentialProvider[]
): CredentialProvider {
  return async (registry) => {
    for (const provider of providers) {
      const found = await provider(registry);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

/**
 * The default provider: the environment (`OCI_USERNAME`/`OCI_PASSWORD`), then Docker's
 * `config.json`.
 *
 * @returns The provider.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultCredentials } from "./credentials.ts";
 * assert.equal(typeof defaultCredentials(), "function");
 * ```
 */
export function defaultCredentials(): CredentialProvider {
  return chainCredentials(environmentCredentials(), dockerConfigCredentials());
}
