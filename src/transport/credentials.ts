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
 * (`ghcr.io`, `docker.io`, `127.0.0.1:5000`); answers `undefined` when it has none.
 */
export type CredentialProvider = (
  registry: string,
) => Promise<Credentials | undefined>;

/** Reads an environment variable; `undefined` when it is unset. */
export type EnvironmentReader = (name: string) => string | undefined;

/** Every name Docker Hub goes by, in references and in `config.json` keys. */
const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/** The name Docker uses for Docker Hub in `config.json` and with credential helpers. */
const DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/";

/** What a credential helper prints on stdout when it has nothing for the registry. */
const NOT_FOUND_REGEXP = /credentials not found/i;

/**
 * Normalises a registry name or a `config.json` key for comparison: no scheme, no path, no
 * trailing slash, lowercase, and every Docker Hub alias as `docker.io`.
 *
 * @param name A registry name or URL, e.g. `https://index.docker.io/v1/`.
 * @returns The normalised name, e.g. `docker.io`.
 *
 * @example Config keys and registry names
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeRegistry } from "./credentials.ts";
 * assert.equal(normalizeRegistry("https://index.docker.io/v1/"), "docker.io");
 * assert.equal(normalizeRegistry("registry-1.docker.io"), "docker.io");
 * assert.equal(normalizeRegistry("https://GHCR.io/"), "ghcr.io");
 * assert.equal(normalizeRegistry("127.0.0.1:5000"), "127.0.0.1:5000");
 * ```
 */
export function normalizeRegistry(name: string): string {
  const host = name.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
    .split("/")[0].toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? "docker.io" : host;
}

function isCredentials(value: unknown): value is Credentials {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return (typeof record.username === "string" &&
    typeof record.password === "string") ||
    typeof record.identityToken === "string";
}

/**
 * Credentials given in code: one set for every registry, or a set per registry (keys are
 * compared after {@linkcode normalizeRegistry}, so `https://index.docker.io/v1/` serves
 * `docker.io`).
 *
 * @param credentials The credentials for every registry, or a record of them keyed by registry.
 * @returns The provider.
 *
 * @example Per registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { staticCredentials } from "./credentials.ts";
 * const provider = staticCredentials({ "ghcr.io": { username: "u", password: "p" } });
 * assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
 * assert.equal(await provider("quay.io"), undefined);
 * ```
 *
 * @example For every registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { staticCredentials } from "./credentials.ts";
 * const provider = staticCredentials({ identityToken: "refresh-token" });
 * assert.deepEqual(await provider("myacr.azurecr.io"), { identityToken: "refresh-token" });
 * ```
 */
export function staticCredentials(
  credentials: Credentials | Readonly<Record<string, Credentials>>,
): CredentialProvider {
  if (isCredentials(credentials)) {
    return () => Promise.resolve(credentials);
  }
  const byRegistry = new Map<string, Credentials>();
  for (const [key, value] of Object.entries(credentials)) {
    const name = normalizeRegistry(key);
    if (!byRegistry.has(name)) byRegistry.set(name, value);
  }
  return (registry) =>
    Promise.resolve(byRegistry.get(normalizeRegistry(registry)));
}

/**
 * Reads a variable of the process environment; a variable Deno is not allowed to read counts
 * as unset, so a program run without `--allow-env` simply has no credentials from it.
 */
function readEnvironment(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) return undefined;
    throw error;
  }
}

/** Options of {@linkcode environmentCredentials}. */
export interface EnvironmentCredentialsOptions {
  /**
   * Where to read `OCI_USERNAME`, `OCI_PASSWORD` and `OCI_REGISTRY`.
   * @default {the process environment; unreadable variables count as unset}
   */
  readonly env?: EnvironmentReader;
}

/**
 * Credentials from `OCI_USERNAME` and `OCI_PASSWORD`; when `OCI_REGISTRY` is set, only for
 * that registry (compared after {@linkcode normalizeRegistry}). Empty variables count as unset,
 * as CI systems expand missing secrets to empty strings. The variables are read at each call.
 *
 * @param options Where to read the variables.
 * @returns The provider.
 *
 * @example Scoped to one registry
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
  options: EnvironmentCredentialsOptions = {},
): CredentialProvider {
  const env = options.env ?? readEnvironment;
  return (registry) => {
    const username = env("OCI_USERNAME");
    const password = env("OCI_PASSWORD");
    const only = env("OCI_REGISTRY");
    if (!username || !password) return Promise.resolve(undefined);
    if (only && normalizeRegistry(only) !== normalizeRegistry(registry)) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve({ username, password });
  };
}

/**
 * Runs `docker-credential-<helper> get` with `serverUrl` on stdin and answers its stdout, or
 * `undefined` when the helper has no credentials for that server.
 */
export type CredentialHelperRunner = (
  helper: string,
  serverUrl: string,
) => Promise<string | undefined>;

/** Options of {@linkcode dockerConfigCredentials}. */
export interface DockerConfigOptions {
  /**
   * The config file.
   * @default {`$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`}
   */
  readonly path?: string;
  /**
   * Where to read `DOCKER_CONFIG` and `HOME` (`USERPROFILE` on Windows). When given, its
   * `PATH`, if set, is also where the default runner looks for credential helpers.
   * @default {the process environment; unreadable variables count as unset}
   */
  readonly env?: EnvironmentReader;
  /**
   * Runs a credential helper.
   * @default {spawns `docker-credential-<helper> get`}
   */
  readonly runHelper?: CredentialHelperRunner;
}

/**
 * Credentials from Docker's `config.json`, looked up as Docker does: `credHelpers` for the
 * registry first, then its `auths` entry (base64 `auth` of `user:password`,
 * `username`/`password`, or `identitytoken`), then the `credsStore`. Helpers run as
 * `docker-credential-<name> get`, given the registry (`https://index.docker.io/v1/` for Docker
 * Hub) on stdin. Keys such as `https://ghcr.io` or `https://index.docker.io/v1/` match after
 * {@linkcode normalizeRegistry}. The file is read at each call; a missing file, or one Deno may
 * not read, means no credentials.
 *
 * @param options The file, the environment and the helper runner.
 * @returns The provider. It rejects with a `SyntaxError` when the file is not valid JSON or an
 * `auth` entry does not decode, a `TypeError` when the file does not have Docker's shape, and an
 * `Error` when a credential helper fails. Messages name the file or helper, never a secret.
 *
 * @example An `auths` entry
 * ```ts
 * import assert from "node:assert/strict";
 * import { dockerConfigCredentials } from "./credentials.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   await Deno.writeTextFile(
 *     `${dir}/config.json`,
 *     JSON.stringify({ auths: { "https://ghcr.io": { auth: btoa("u:p") } } }),
 *   );
 *   const provider = dockerConfigCredentials({ path: `${dir}/config.json` });
 *   assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
 *   assert.equal(await provider("quay.io"), undefined);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function dockerConfigCredentials(
  options: DockerConfigOptions = {},
): CredentialProvider {
  const env = options.env ?? readEnvironment;
  const runHelper = options.runHelper ??
    ((helper: string, serverUrl: string) =>
      runCredentialHelper(helper, serverUrl, options.env?.("PATH")));
  return async (registry) => {
    const path = options.path ?? defaultConfigPath(env);
    if (path === undefined) return undefined;
    const config = await readDockerConfig(path);
    if (config === undefined) return undefined;
    const wanted = normalizeRegistry(registry);
    const serverUrl = wanted === "docker.io" ? DOCKER_HUB_SERVER_URL : wanted;
    const helper = lookUp(config.credHelpers, wanted, serverUrl);
    if (helper) {
      return parseHelperAnswer(await runHelper(helper, serverUrl), helper);
    }
    const entry = lookUp(config.auths, wanted, serverUrl);
    const fromFile = entry && credentialsOfEntry(entry, path);
    if (fromFile) return fromFile;
    if (config.credsStore) {
      return parseHelperAnswer(
        await runHelper(config.credsStore, serverUrl),
        config.credsStore,
      );
    }
    return undefined;
  };
}

function defaultConfigPath(env: EnvironmentReader): string | undefined {
  const dir = env("DOCKER_CONFIG");
  if (dir) return `${dir}/config.json`;
  const home = env("HOME") || env("USERPROFILE");
  return home ? `${home}/.docker/config.json` : undefined;
}

/** One `auths` entry of `config.json`. */
interface AuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
}

/** The parts of `config.json` that hold credentials. */
interface DockerConfig {
  readonly auths?: Readonly<Record<string, AuthEntry>>;
  readonly credHelpers?: Readonly<Record<string, string>>;
  readonly credsStore?: string;
}

/** Reads and checks `config.json`; `undefined` when it is missing or unreadable by permission. */
async function readDockerConfig(
  path: string,
): Promise<DockerConfig | undefined> {
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
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    // The parser's own message quotes the content, which may hold a secret: keep only where.
    const where = /\(line \d+ column \d+\)/.exec(String(error))?.[0];
    throw new SyntaxError(
      `Cannot read Docker credentials from "${path}": it is not valid JSON${
        where ? ` ${where}` : ""
      }`,
    );
  }
  const problem = shapeProblem(config);
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot read Docker credentials from "${path}": ${problem}`,
    );
  }
  return config as DockerConfig;
}

/** What keeps a parsed `config.json` from having Docker's shape, if anything. */
function shapeProblem(config: unknown): string | undefined {
  if (!isRecord(config)) return "it is not a JSON object";
  const { auths, credHelpers, credsStore } = config;
  if (auths !== undefined && auths !== null) {
    if (!isRecord(auths)) return '"auths" is not an object';
    for (const [key, entry] of Object.entries(auths)) {
      if (!isRecord(entry)) return `"auths" entry "${key}" is not an object`;
      for (const field of ["auth", "username", "password", "identitytoken"]) {
        const value = entry[field];
        if (
          value !== undefined && value !== null && typeof value !== "string"
        ) {
          return `"${field}" of "auths" entry "${key}" is not a string`;
        }
      }
    }
  }
  if (credHelpers !== undefined && credHelpers !== null) {
    if (!isRecord(credHelpers)) return '"credHelpers" is not an object';
    for (const [key, helper] of Object.entries(credHelpers)) {
      if (typeof helper !== "string") {
        return `"credHelpers" entry "${key}" is not a string`;
      }
    }
  }
  if (
    credsStore !== undefined && credsStore !== null &&
    typeof credsStore !== "string"
  ) return '"credsStore" is not a string';
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Finds a registry's value in a map keyed by registry: an exact key first (as Docker does),
 * then any key that normalises to the same registry.
 */
function lookUp<T>(
  map: Readonly<Record<string, T>> | undefined,
  wanted: string,
  serverUrl: string,
): T | undefined {
  if (!map) return undefined;
  if (Object.hasOwn(map, serverUrl)) return map[serverUrl];
  if (Object.hasOwn(map, wanted)) return map[wanted];
  const key = Object.keys(map).find((key) => normalizeRegistry(key) === wanted);
  return key === undefined ? undefined : map[key];
}

/** The credentials of an `auths` entry, or `undefined` for an empty one (`{}`). */
function credentialsOfEntry(
  entry: AuthEntry,
  path: string,
): Credentials | undefined {
  const decoded = entry.auth ? decodeAuth(entry.auth, path) : undefined;
  const username = entry.username || decoded?.username;
  if (entry.identitytoken) {
    return username
      ? { identityToken: entry.identitytoken, username }
      : { identityToken: entry.identitytoken };
  }
  if (decoded) return decoded;
  if (entry.username && entry.password) {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Decodes a base64 `auth` value, `user:password`, where the password may hold colons. */
function decodeAuth(
  value: string,
  path: string,
): { username: string; password: string } {
  let text: string;
  try {
    const bytes = Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SyntaxError(
      `Cannot read Docker credentials from "${path}": an "auth" value is not base64 of UTF-8 text`,
    );
  }
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new SyntaxError(
      `Cannot read Docker credentials from "${path}": an "auth" value does not decode to "username:password"`,
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Turns a helper's JSON answer (`{ServerURL, Username, Secret}`) into credentials. */
function parseHelperAnswer(
  output: string | undefined,
  helper: string,
): Credentials | undefined {
  if (output === undefined || output.trim() === "") return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(output);
  } catch {
    throw new SyntaxError(
      `Cannot read the answer of credential helper "docker-credential-${helper}": it is not JSON`,
    );
  }
  if (!isRecord(answer)) {
    throw new TypeError(
      `Cannot read the answer of credential helper "docker-credential-${helper}": it is not a JSON object`,
    );
  }
  const { Username: username, Secret: secret } = answer;
  if (typeof secret !== "string" || secret === "") return undefined;
  // Docker's convention: the user name "<token>" marks the secret as an identity token.
  if (username === "<token>") return { identityToken: secret };
  return {
    username: typeof username === "string" ? username : "",
    password: secret,
  };
}

/**
 * The default helper runner: spawns `docker-credential-<helper> get`, looked up on `path` when
 * given, else on the process's `PATH`.
 */
async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  path: string | undefined,
): Promise<string | undefined> {
  const program = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      ...(path === undefined ? {} : { env: { PATH: path } }),
    }).spawn();
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "it is not installed or not on PATH"
      : error instanceof Deno.errors.NotCapable ||
          error instanceof Deno.errors.PermissionDenied
      ? `Deno may not run it: grant --allow-run=${program}`
      : error instanceof Error
      ? error.message
      : String(error);
    throw new Error(
      `Cannot run credential helper "${program}" for ${serverUrl}: ${reason}`,
      { cause: error },
    );
  }
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(serverUrl));
    await writer.close();
  } catch {
    // The helper exited without reading stdin; its exit status tells what went wrong.
  }
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout).trim();
  if (code === 0) return out;
  if (NOT_FOUND_REGEXP.test(out)) return undefined;
  throw new Error(
    `Cannot get credentials for ${serverUrl} from credential helper "${program}": it exited with code ${code}${
      failureDetail(new TextDecoder().decode(stderr), out)
    }`,
  );
}

/**
 * The first line of what a failed helper printed, for the error message. Helpers print their
 * errors on stdout or stderr; anything that looks like a JSON answer is left out, as it may hold
 * the secret.
 */
function failureDetail(stderr: string, stdout: string): string {
  for (const text of [stderr, stdout]) {
    const line = text.trim().split("\n")[0].trim();
    if (line === "" || line.startsWith("{") || /secret/i.test(line)) continue;
    return `: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
  }
  return "";
}

/**
 * Asks providers in order; the first that has credentials wins. A provider that throws stops
 * the chain with its error.
 *
 * @param providers The providers, in order.
 * @returns The chained provider.
 *
 * @example A specific registry before a catch-all
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
 * The default provider: the environment (`OCI_USERNAME`/`OCI_PASSWORD`, see
 * {@linkcode environmentCredentials}), then Docker's `config.json` (see
 * {@linkcode dockerConfigCredentials}).
 *
 * @returns The provider.
 *
 * @example Credentials given in code first, then the environment and Docker's login
 * ```ts
 * import assert from "node:assert/strict";
 * import { chainCredentials, defaultCredentials, staticCredentials } from "./credentials.ts";
 * const provider = chainCredentials(
 *   staticCredentials({ "registry.example": { username: "ci", password: "pw" } }),
 *   defaultCredentials(),
 * );
 * assert.deepEqual(await provider("registry.example"), { username: "ci", password: "pw" });
 * ```
 */
export function defaultCredentials(): CredentialProvider {
  return chainCredentials(environmentCredentials(), dockerConfigCredentials());
}
