/**
 * Which proxy a request goes through: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
 * (lower-case forms too, which win when both are set, as curl does), or settings given in code.
 * Loopback is not exempt unless `NO_PROXY` lists it.
 *
 * @module
 */

/** Proxy settings: the proxy URL per scheme and the hosts that go direct. */
export interface ProxySettings {
  /** The proxy for `https:` URLs (`http://[user:password@]host:port`). */
  readonly https?: string;
  /** The proxy for `http:` URLs. */
  readonly http?: string;
  /**
   * Hosts reached directly, comma-separated: `host`, `host:port`, `.suffix` (or `suffix`: the
   * host and its subdomains), an IP address, an IPv4 CIDR block (`10.0.0.0/8`), or `*` for all.
   */
  readonly noProxy?: string;
}

/** A proxy chosen for one request. */
export interface ProxyRoute {
  /** `host` of the proxy, without brackets for IPv6. */
  readonly hostname: string;
  /** The proxy's port (80 when the URL names none). */
  readonly port: number;
  /** `Basic …` from the proxy URL's user and password, for `Proxy-Authorization`. */
  readonly authorization: string | undefined;
  /** The proxy URL without its credentials, for messages. */
  readonly display: string;
}

/** Reads one variable; undefined when it is unset or not granted. */
export type ProxyEnvironmentReader = (name: string) => string | undefined;

/** The variables {@linkcode proxySettingsFromEnv} reads, to grant with `--allow-env`. */
export const PROXY_ENV_NAMES: readonly string[] = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "ALL_PROXY",
  "all_proxy",
  "NO_PROXY",
  "no_proxy",
];

/** A variable Deno may not read counts as unset; asking never prompts. */
function readGrantedEnv(name: string): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable: name })
    .state;
  if (state !== "granted") return undefined;
  return Deno.env.get(name);
}

/** The lower-case form of a variable when it is set, else the upper-case one; "" is unset. */
function either(
  env: ProxyEnvironmentReader,
  upper: string,
): string | undefined {
  const value = env(upper.toLowerCase()) ?? env(upper);
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/**
 * Reads the proxy settings of the environment: `https_proxy`/`HTTPS_PROXY`,
 * `http_proxy`/`HTTP_PROXY`, `all_proxy`/`ALL_PROXY` for either scheme when its own is unset,
 * `no_proxy`/`NO_PROXY`. A variable not granted by `--allow-env` counts as unset.
 *
 * @param env Reads a variable.
 * @returns The settings; empty when nothing is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proxySettingsFromEnv } from "./proxy.ts";
 * const env: Record<string, string> = { HTTPS_PROXY: "http://a:3128", https_proxy: "http://b:3128", NO_PROXY: "internal" };
 * assert.deepEqual(proxySettingsFromEnv((name) => env[name]), {
 *   https: "http://b:3128", http: undefined, noProxy: "internal",
 * });
 * ```
 */
export function proxySettingsFromEnv(
  env: ProxyEnvironmentReader = readGrantedEnv,
): ProxySettings {
  const all = either(env, "ALL_PROXY");
  return {
    https: either(env, "HTTPS_PROXY") ?? all,
    http: either(env, "HTTP_PROXY") ?? all,
    noProxy: either(env, "NO_PROXY"),
  };
}

/** The port a URL reaches (its scheme's default when it names none). */
function effectivePort(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

function stripBrackets(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

function inCidr(hostname: string, entry: string): boolean {
  const [base, bits] = entry.split("/");
  const address = ipv4ToNumber(hostname);
  const network = ipv4ToNumber(base);
  const size = Number(bits);
  if (address === undefined || network === undefined) return false;
  if (!/^\d{1,2}$/.test(bits) || size > 32) return false;
  // Compare the top `size` bits; division keeps the arithmetic exact (bitwise ops are 32-bit signed).
  const block = 2 ** (32 - size);
  return Math.floor(address / block) === Math.floor(network / block);
}

/** Splits `host[:port]` / `[v6][:port]` of a NO_PROXY entry. */
function splitEntry(entry: string): { host: string; port: number | undefined } {
  const bracketed = entry.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (bracketed) {
    return {
      host: bracketed[1],
      port: bracketed[2] ? Number(bracketed[2]) : undefined,
    };
  }
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = entry.split(":");
    if (/^\d+$/.test(port)) return { host, port: Number(port) };
  }
  return { host: entry, port: undefined };
}

/** Whether one NO_PROXY entry exempts a host and port. */
function entryMatches(entry: string, hostname: string, port: number): boolean {
  if (entry === "*") return true;
  if (entry.includes("/")) return inCidr(hostname, entry);
  const { host, port: entryPort } = splitEntry(entry);
  if (entryPort !== undefined && entryPort !== port) return false;
  const name = host.replace(/\.$/, "");
  if (name.startsWith(".")) {
    return hostname.endsWith(name) || hostname === name.slice(1);
  }
  return hostname === name || hostname.endsWith(`.${name}`);
}

/**
 * Whether `NO_PROXY` exempts a URL: its host (case-insensitive, IPv6 without brackets) and port
 * against each entry.
 *
 * @param url The request URL.
 * @param noProxy The list, comma- or space-separated.
 * @returns True when the URL goes direct.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bypassesProxy } from "./proxy.ts";
 * assert.ok(bypassesProxy(new URL("https://reg.corp.example/v2/"), ".corp.example"));
 * assert.ok(bypassesProxy(new URL("http://10.1.2.3:5000/"), "10.0.0.0/8"));
 * assert.ok(!bypassesProxy(new URL("http://127.0.0.1:5000/"), "localhost"));
 * assert.ok(!bypassesProxy(new URL("http://127.0.0.1:5000/"), "127.0.0.1:6000"));
 * ```
 */
export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (noProxy === undefined) return false;
  const hostname = stripBrackets(url.hostname.toLowerCase()).replace(/\.$/, "");
  const port = effectivePort(url);
  return noProxy.toLowerCase().split(/[\s,]+/)
    .filter((entry) => entry !== "")
    .some((entry) => entryMatches(entry, hostname, port));
}

/**
 * Parses a proxy URL (`http://[user:password@]host[:port]`; a bare `host:port` is taken as
 * `http://`).
 *
 * @param text The proxy as given.
 * @returns The route to it.
 * @throws {TypeError} When it is not a URL, or not an `http://` one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseProxyUrl } from "./proxy.ts";
 * const route = parseProxyUrl("http://me:s%40cret@proxy.corp:3128");
 * assert.equal(route.hostname, "proxy.corp");
 * assert.equal(route.port, 3128);
 * assert.equal(route.authorization, `Basic ${btoa("me:s@cret")}`);
 * assert.equal(route.display, "http://proxy.corp:3128");
 * assert.throws(() => parseProxyUrl("socks5://proxy:1080"), /http:\/\//);
 * ```
 */
export function parseProxyUrl(text: string): ProxyRoute {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
    ? text
    : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`The proxy "${text}" is not a URL`);
  }
  if (url.protocol !== "http:") {
    throw new TypeError(
      `The proxy ${url.protocol}//${url.host} is not supported: give an http:// proxy (HTTPS goes through it with CONNECT)`,
    );
  }
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const authorization = user === "" && password === ""
    ? undefined
    : `Basic ${
      btoa(
        String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)),
      )
    }`;
  return {
    hostname: stripBrackets(url.hostname),
    port: url.port === "" ? 80 : Number(url.port),
    authorization,
    display: `http://${url.host}`,
  };
}

/**
 * The proxy a request goes through, if any: the one of its scheme, unless `noProxy` exempts
 * its host.
 *
 * @param url The request URL.
 * @param settings The proxy settings.
 * @returns The route, or undefined to connect directly.
 * @throws {TypeError} When the proxy setting is not an `http://` URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proxyFor } from "./proxy.ts";
 * const settings = { https: "http://127.0.0.1:3128", noProxy: "registry.internal" };
 * assert.equal(proxyFor(new URL("https://ghcr.io/v2/"), settings)?.port, 3128);
 * assert.equal(proxyFor(new URL("https://registry.internal/v2/"), settings), undefined);
 * assert.equal(proxyFor(new URL("http://ghcr.io/v2/"), settings), undefined);
 * ```
 */
export function proxyFor(
  url: URL,
  settings: ProxySettings,
): ProxyRoute | undefined {
  const proxy = url.protocol === "https:" ? settings.https : settings.http;
  if (proxy === undefined || bypassesProxy(url, settings.noProxy)) {
    return undefined;
  }
  return parseProxyUrl(proxy);
}
