/**
 * Registry authentication: answers a `401` challenge with a Bearer token or Basic credentials,
 * caches tokens per registry and scope, and sends them up front on later requests.
 *
 * @module
 */
import { isLoopbackHost } from "../oci/reference.ts";
import { type Challenge, parseChallenges } from "./challenge.ts";
import {
  type CredentialProvider,
  type Credentials,
  normalizeRegistry,
} from "./credentials.ts";
import {
  RegistryError,
  type RegistryErrorCode,
  registryErrorOf,
  rememberSecret,
  TimeoutError,
  type UnsafeUrlError,
} from "./errors.ts";
import { resolveRegistryUrl } from "./redirects.ts";
import { readAtMost } from "../io/bytes.ts";
import { isReplayable, replayRequest, type Transport } from "./request_body.ts";

/** Seconds a token lives when the token server does not say (Docker's token spec). */
const DEFAULT_TOKEN_LIFETIME = 60;
/** Largest token response read: a misbehaving token server cannot fill the memory. */
const MAX_TOKEN_RESPONSE = 1024 * 1024;
/** What a token may hold to be sent in an `Authorization` header: visible ASCII. */
const TOKEN_VALUE_REGEXP = /^[\x21-\x7e]+$/;

/** What the auth layer did, for logs and tests. Never holds a secret. */
export interface AuthEvent {
  /** `challenge`: a 401 was answered; `token`: a token was requested. */
  readonly type: "challenge" | "token";
  /** The registry, as `host[:port]`. */
  readonly registry: string;
  /** The scopes involved, space-separated (empty for registry-wide requests). */
  readonly scope: string;
}

/** Options of {@linkcode withAuth}. */
export interface AuthOptions {
  /** Where credentials come from; without one, only anonymous tokens are used. */
  readonly credentials?: CredentialProvider;
  /**
   * Sent as `client_id` to token servers.
   * @default {"oci"}
   */
  readonly clientId?: string;
  /**
   * The transport for token requests.
   * @default {the wrapped transport}
   */
  readonly tokenTransport?: Transport;
  /** Told about challenges answered and tokens requested. */
  readonly onEvent?: (event: AuthEvent) => void;
  /**
   * The clock in milliseconds, for token expiry.
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/**
 * Logging in to a registry failed: no usable challenge, refused credentials, a malformed token
 * response, or a second `401` after logging in. Names the registry and the scope.
 *
 * @example Read the registry and scope
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthenticationError } from "./auth.ts";
 * const error = new AuthenticationError({
 *   registry: "127.0.0.1:5000", scope: "repository:app:pull", reason: "wrong credentials",
 *   method: "GET", url: "http://127.0.0.1:5000/v2/app/tags/list", status: 401,
 * });
 * assert.equal(error.registry, "127.0.0.1:5000");
 * assert.match(error.message, /Cannot log in to 127.0.0.1:5000 for repository:app:pull: wrong credentials/);
 * ```
 */
export class AuthenticationError extends RegistryError {
  /** The registry, as `host[:port]`. */
  readonly registry: string;
  /** The scopes asked for, space-separated (empty for registry-wide requests). */
  readonly scope: string;

  /**
   * Creates the error.
   *
   * @param init The registry, scope and reason, and the request and status that failed.
   */
  constructor(init: {
    registry: string;
    scope: string;
    reason: string;
    method: string;
    url: string;
    status: number;
    statusText?: string;
    codes?: readonly RegistryErrorCode[];
    cause?: unknown;
  }) {
    super({
      ...init,
      reason: `Cannot log in to ${init.registry}${
        init.scope ? ` for ${init.scope}` : ""
      }: ${init.reason}`,
    });
    this.name = "AuthenticationError";
    this.registry = init.registry;
    this.scope = init.scope;
  }
}

/** The repository and actions a distribution API request needs, e.g. `repository:app:pull`. */
const REPOSITORY_PATH_REGEXP =
  /^\/v2\/(.+)\/(?:manifests|blobs|tags|referrers)\//;

/**
 * The token scope a request to the distribution API needs: `repository:<name>:pull` for reads,
 * `pull,push` for writes and for cancelling an upload session (a `DELETE` of
 * `…/blobs/uploads/<id>`, which is part of a push), `delete` for other deletes; empty for
 * requests outside a repository.
 *
 * @param request The request.
 * @returns The scope, or the empty string.
 *
 * @example Scopes of a read and a write
 * ```ts
 * import assert from "node:assert/strict";
 * import { scopeOf } from "./auth.ts";
 * assert.equal(scopeOf(new Request("http://r/v2/a/b/manifests/v1")), "repository:a/b:pull");
 * assert.equal(scopeOf(new Request("http://r/v2/a/blobs/uploads/", { method: "POST" })), "repository:a:pull,push");
 * assert.equal(scopeOf(new Request("http://r/v2/a/blobs/uploads/1", { method: "DELETE" })), "repository:a:pull,push");
 * assert.equal(scopeOf(new Request("http://r/v2/")), "");
 * ```
 */
export function scopeOf(request: Request): string {
  const path = new URL(request.url).pathname;
  const match = REPOSITORY_PATH_REGEXP.exec(path);
  if (!match) return "";
  const actions = request.method === "GET" || request.method === "HEAD"
    ? "pull"
    : request.method === "DELETE" && !/\/blobs\/uploads\/[^/]+$/.test(path)
    ? "delete"
    : "pull,push";
  return `repository:${match[1]}:${actions}`;
}

/** Credentials and tokens go over plain HTTP only to loopback hosts. */
function isSafeToSend(url: URL): boolean {
  return url.protocol === "https:" || isLoopbackHost(url.host);
}

function basicHeader(credentials: Credentials): string | undefined {
  if (!("password" in credentials)) return undefined;
  const bytes = new TextEncoder().encode(
    `${credentials.username}:${credentials.password}`,
  );
  const value = btoa(String.fromCharCode(...bytes));
  rememberSecret(value);
  return `Basic ${value}`;
}

/** Remembers every secret of a set of credentials, for redaction (see `rememberSecret`). */
function rememberCredentials(credentials: Credentials | undefined): void {
  if (credentials === undefined) return;
  if ("password" in credentials) rememberSecret(credentials.password);
  if ("identityToken" in credentials) {
    rememberSecret(credentials.identityToken);
  }
}

/** Remembers the credential of an `Authorization` header a caller set, for redaction. */
function rememberAuthorization(header: string): void {
  const credential = /^\s*\S+\s+(\S.*)$/.exec(header)?.[1] ?? header;
  rememberSecret(credential.trim());
}

interface CachedAuth {
  readonly header: string;
  readonly expiresAt: number;
}

/**
 * Wraps a transport with registry authentication. On a `401` from the registry the
 * `WWW-Authenticate` challenge is parsed (RFC 7235); for `Bearer`, a token is requested from the
 * realm with the challenge's service and every scope it names, with Basic credentials when the
 * provider has some and anonymously otherwise (`token` or `access_token` is accepted); for
 * `Basic`, the credentials are sent. The request is then sent again once; a second `401` is an
 * {@linkcode AuthenticationError}. Tokens are cached per registry and scope until `expires_in`
 * (default 60 s) runs out and sent up front on later requests of that scope, so an operation pays
 * one `401` at most. Credentials and tokens are never sent over plain HTTP except to loopback
 * hosts, and only to the origin that asked (the redirect layer below drops them on a redirect).
 *
 * @param next The transport below (usually retry, then redirects, then `httpTransport`).
 * @param options Credentials, client id, clock and an event callback.
 * @returns The authenticating transport.
 *
 * @example Basic auth against a handler that asks for it
 * ```ts
 * import assert from "node:assert/strict";
 * import { withAuth } from "./auth.ts";
 * import { staticCredentials } from "./credentials.ts";
 * const registry = (request: Request) =>
 *   Promise.resolve(request.headers.get("authorization") === "Basic " + btoa("u:p")
 *     ? new Response("ok")
 *     : new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } }));
 * const transport = withAuth(registry, { credentials: staticCredentials({ username: "u", password: "p" }) });
 * assert.equal(await (await transport(new Request("http://127.0.0.1:5000/v2/"))).text(), "ok");
 * ```
 */
export function withAuth(
  next: Transport,
  options: AuthOptions = {},
): Transport {
  const now = options.now ?? Date.now;
  const clientId = options.clientId ?? "oci";
  const tokenTransport = options.tokenTransport ?? next;
  /** Bearer tokens by `origin scope`, Basic headers by `origin`. */
  const cache = new Map<string, CachedAuth>();
  /** Token requests in flight, so that concurrent 401s share one. */
  const pending = new Map<string, Promise<CachedAuth>>();

  function cached(key: string): string | undefined {
    const entry = cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now()) return entry.header;
    cache.delete(key);
    return undefined;
  }

  return async function authenticating(request: Request): Promise<Response> {
    const preset = request.headers.get("authorization");
    if (preset !== null) {
      rememberAuthorization(preset);
      return next(request);
    }
    const url = new URL(request.url);
    const registry = url.host;
    const scope = scopeOf(request);
    const known = isSafeToSend(url)
      ? cached(`${url.origin} ${scope}`) ?? cached(url.origin)
      : undefined;
    const replayable = isReplayable(request);
    const first = known === undefined
      ? (replayable ? replayRequest(request) : request)
      : withHeader(request, known, replayable);
    const response = await next(first);
    if (response.status !== 401 || !sameOrigin(response, url)) return response;

    const fail = async (reason: string, cause?: unknown): Promise<never> => {
      const error = await registryErrorOf(request, response);
      throw new AuthenticationError({
        registry,
        scope,
        reason,
        method: request.method,
        url: request.url,
        status: response.status,
        statusText: response.statusText,
        codes: error.codes,
        cause,
      });
    };

    const header = response.headers.get("www-authenticate");
    if (header === null) {
      return fail(
        "the registry answered 401 without a WWW-Authenticate header",
      );
    }
    let challenges: Challenge[];
    try {
      challenges = parseChallenges(header);
    } catch (error) {
      return fail((error as Error).message, error);
    }
    if (!isSafeToSend(url)) {
      return fail(
        `refusing to send credentials over plain HTTP to ${url.origin}, which is not a loopback host`,
      );
    }
    options.onEvent?.({ type: "challenge", registry, scope });
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    let login: CachedAuth;
    let cacheKeys: string[];
    if (bearer?.params.realm !== undefined) {
      const scopes = (bearer.params.scope ?? "").split(" ").filter((s) => s);
      const key = `${url.origin} ${[...scopes].sort().join(" ")}`;
      try {
        let inFlight = pending.get(key);
        if (inFlight === undefined) {
          inFlight = requestToken(
            bearer,
            scopes,
            { registry, scope, signal: request.signal, from: request.url },
          );
          pending.set(key, inFlight);
          inFlight.finally(() => pending.delete(key)).catch(() => {});
        }
        login = await inFlight;
      } catch (error) {
        await response.body?.cancel();
        throw error;
      }
      cacheKeys = [key, `${url.origin} ${scope}`];
    } else if (basic !== undefined) {
      const credentials = await lookUp(registry);
      const value = credentials && basicHeader(credentials);
      if (value === undefined) {
        return fail(
          "the registry asks for Basic credentials and none were found for it",
        );
      }
      login = { header: value, expiresAt: Infinity };
      cacheKeys = [url.origin];
    } else if (bearer !== undefined) {
      return fail(
        `the Bearer challenge names no realm to get a token from: "${
          quoteHeader(header)
        }"`,
      );
    } else {
      return fail(
        `unsupported authentication scheme in "${quoteHeader(header)}"`,
      );
    }
    for (const key of cacheKeys) cache.set(key, login);
    if (!replayable) {
      return fail(
        "the request body cannot be sent again after logging in (build it with createRequest and a BlobSource)",
      );
    }
    await response.body?.cancel();
    const second = await next(withHeader(request, login.header, true));
    if (second.status !== 401 || !sameOrigin(second, url)) return second;
    for (const key of cacheKeys) cache.delete(key);
    const error = await registryErrorOf(request, second);
    throw new AuthenticationError({
      registry,
      scope,
      reason: "the registry refused the credentials or token it asked for",
      method: request.method,
      url: request.url,
      status: second.status,
      statusText: second.statusText,
      codes: error.codes,
    });
  };

  async function lookUp(registry: string): Promise<Credentials | undefined> {
    const credentials = await options.credentials?.(
      normalizeRegistry(registry),
    );
    rememberCredentials(credentials);
    return credentials;
  }

  async function requestToken(
    challenge: Challenge,
    scopes: string[],
    context: {
      registry: string;
      scope: string;
      signal: AbortSignal;
      from: string;
    },
  ): Promise<CachedAuth> {
    const { registry, signal } = context;
    const scope = scopes.join(" ") || context.scope;
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = resolveRegistryUrl(realm, {
        from: context.from,
        header: "WWW-Authenticate realm",
        relative: false,
      });
    } catch (error) {
      throw new AuthenticationError({
        registry,
        scope,
        reason: realmProblem(realm, error as UnsafeUrlError),
        method: "GET",
        url: realm,
        status: 401,
        cause: error,
      });
    }
    const refuse = (reason: string, status = 401, cause?: unknown) =>
      new AuthenticationError({
        registry,
        scope,
        reason,
        method: "GET",
        url: url.href,
        status,
        cause,
      });
    if (!isSafeToSend(url)) {
      throw refuse(
        `refusing to request a token over plain HTTP from ${url.origin}, which is not a loopback host`,
      );
    }
    const credentials = await lookUp(registry);
    options.onEvent?.({ type: "token", registry, scope });
    const query = new URLSearchParams(url.search);
    if (challenge.params.service !== undefined) {
      query.set("service", challenge.params.service);
    }
    for (const s of scopes) query.append("scope", s);
    query.set("client_id", clientId);
    let tokenRequest: Request;
    if (credentials && "identityToken" in credentials) {
      // Docker's identity token is an OAuth2 refresh token: POST it to the realm.
      query.set("grant_type", "refresh_token");
      query.set("refresh_token", credentials.identityToken);
      tokenRequest = new Request(url.origin + url.pathname, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: query.toString(),
        signal,
      });
    } else {
      url.search = query.toString();
      const headers = new Headers();
      const value = credentials && basicHeader(credentials);
      if (value) headers.set("authorization", value);
      tokenRequest = new Request(url, { headers, signal });
    }
    const started = now();
    const response = await tokenTransport(tokenRequest);
    if (!response.ok) {
      const error = await registryErrorOf(tokenRequest, response);
      throw new AuthenticationError({
        registry,
        scope,
        reason: response.status === 401 || response.status === 403
          ? `the token server refused the ${
            credentials ? "credentials" : "anonymous request"
          }`
          : "the token server failed",
        method: tokenRequest.method,
        url: tokenRequest.url,
        status: response.status,
        statusText: response.statusText,
        codes: error.codes,
      });
    }
    const length = response.headers.get("content-length");
    let bytes: Uint8Array | undefined;
    try {
      bytes = length !== null && Number(length) > MAX_TOKEN_RESPONSE
        ? (await response.body?.cancel(), undefined)
        : await readAtMost(response.body, MAX_TOKEN_RESPONSE);
    } catch (error) {
      // A token server that stalls is a network failure, retried as one, not a refusal.
      if (error instanceof TimeoutError) throw error;
      throw refuse(
        "the token response could not be read",
        response.status,
        error,
      );
    }
    if (bytes === undefined) {
      throw refuse(
        `the token response is larger than ${MAX_TOKEN_RESPONSE} bytes`,
        response.status,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      throw refuse("the token response is not JSON", response.status, error);
    }
    const { token, access_token, refresh_token, expires_in } = (body ??
      {}) as Record<string, unknown>;
    for (const secret of [token, access_token, refresh_token]) {
      if (typeof secret === "string") rememberSecret(secret);
    }
    const value = typeof token === "string" && token !== ""
      ? token
      : access_token;
    if (typeof value !== "string" || value === "") {
      throw refuse(
        'the token response has no "token" or "access_token" string',
        response.status,
      );
    }
    if (!TOKEN_VALUE_REGEXP.test(value)) {
      throw refuse(
        "the token in the token response has characters that cannot be sent in an Authorization header (only visible ASCII can)",
        response.status,
      );
    }
    const lifetime =
      typeof expires_in === "number" && Number.isFinite(expires_in) &&
        expires_in > 0
        ? expires_in
        : DEFAULT_TOKEN_LIFETIME;
    return { header: `Bearer ${value}`, expiresAt: started + lifetime * 1000 };
  }
}

function withHeader(
  request: Request,
  header: string,
  replayable: boolean,
): Request {
  const headers = new Headers(request.headers);
  headers.set("authorization", header);
  return replayable
    ? replayRequest(request, { headers })
    : new Request(request, { headers });
}

/** A 401 from another origin (after a redirect) is not the registry's challenge. */
function sameOrigin(response: Response, url: URL): boolean {
  return response.url === "" || new URL(response.url).origin === url.origin;
}

/** Why a token realm was refused, in words; the {@linkcode UnsafeUrlError} has the rest. */
function realmProblem(realm: string, error: UnsafeUrlError): string {
  if (error.rule === "url") return `the token realm "${realm}" is not a URL`;
  if (error.rule === "scheme") {
    return `the token realm "${realm}" is not an http or https URL`;
  }
  return error.message;
}

/** A header for an error message: at most 256 characters of it. */
function quoteHeader(header: string): string {
  return header.length > 256
    ? `${header.slice(0, 256)}… (${header.length} characters)`
    : header;
}
