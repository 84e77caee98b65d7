/**
 * A Docker token server for tests (the "Token Authentication Specification" and its OAuth2
 * variant): it issues RS256 JWTs that the CNCF distribution registry's `token` auth accepts.
 *
 * What distribution 2.8 checks (registry/auth/token/token.go and accesscontroller.go at v2.8.2):
 * - `iss` equals its `issuer` and `aud` equals its `service`; `aud` must be a JSON string (an
 *   array makes the token malformed).
 * - `exp` and `nbf` with a fixed leeway of 60 s each way (`token.Leeway`): a token is accepted
 *   until `exp + 60 s`, so an `expiresIn: 1` token still works for about a minute. To see an
 *   expired token rejected without waiting, issue it with `clockOffset` below `-(60 + expiresIn)`.
 * - The signing key: `x5c` (base64 DER certificate chain verified up to `rootcertbundle`), else
 *   `jwk`, else `kid`, which must be the libtrust key ID of a certificate in the bundle. This
 *   server sends `x5c` by default and `kid` on request.
 * - `access` grants `[{type, name, actions}]`; every action a request needs must be listed.
 * On failure the registry answers 401 with `WWW-Authenticate: Bearer realm="…",service="…"`,
 * plus `scope="…"` when the endpoint needs one (actions joined in no fixed order), plus
 * `error="invalid_token"` for a bad or expired token or `error="insufficient_scope"`.
 *
 * @module
 */
import { assertPeer } from "./available.ts";

/** One resource and its actions, as in a `scope` (`repository:team/app:pull,push`) or a JWT's `access`. */
export interface Access {
  /** `repository`, `registry`… (may carry a class, `repository(plugin)`). */
  type: string;
  /** `team/app`, `catalog`… */
  name: string;
  /** `pull`, `push`, `delete`, `*`… */
  actions: string[];
}

/** Options of {@linkcode startTokenServer}. */
export interface TokenServerOptions {
  /** Basic credentials (user to password) accepted at the realm; wrong ones get 401. */
  users?: Record<string, string>;
  /**
   * Refresh tokens (token to user) accepted by `grant_type=refresh_token`, as Docker's identity
   * tokens are; the server also accepts those it hands out itself.
   */
  refreshTokens?: Record<string, string>;
  /**
   * Requests without credentials: `true` gives pull-only tokens for any repository, a list gives
   * them for those repositories only (others get no actions), `false` answers 401.
   * @default {true}
   */
  anonymous?: boolean | string[];
  /** `expires_in` of the response and the JWT's lifetime (`exp - iat`), in seconds. @default {300} */
  expiresIn?: number;
  /** Leave `expires_in` out of the response (the JWT still expires). @default {false} */
  omitExpiresIn?: boolean;
  /**
   * Which field of the JSON answer carries the token. Without it, `GET` answers `token` (the
   * Docker form) and `POST` answers `access_token` (the OAuth2 form).
   */
  field?: "token" | "access_token" | "both";
  /**
   * Seconds added to this server's clock when it writes `iat`, `nbf`, `exp` and `issued_at`,
   * as if its clock were off. Below `-(60 + expiresIn)` distribution rejects the token at once.
   * @default {0}
   */
  clockOffset?: number;
  /**
   * The actions granted for each requested scope. By default a user gets everything asked and
   * an anonymous client gets `pull` (if asked, and for the repositories `anonymous` allows).
   * It replaces the default entirely; `anonymous: false` still refuses anonymous requests first.
   */
  grant?: (user: string | undefined, scope: Access) => string[];
  /** How the JWT names its signing key: the certificate itself or its libtrust ID. @default {"x5c"} */
  keyHeader?: "x5c" | "kid";
  /** Serve HTTPS with this certificate and key (PEM text, `makeTestTls().server` fits): the realm is `https://…`. */
  tls?: { cert: string; key: string };
}

/** A request the token server answered. */
export interface TokenRequest {
  /** The full request URL (with `scope`, `service`… for `GET`). */
  url: string;
  /** Whether it presented credentials: Basic `Authorization`, or a password or refresh token in a form. */
  authorized: boolean;
  /** The user name presented (also when the password was wrong); `undefined` when anonymous. */
  user: string | undefined;
  /** The scopes asked, one per entry (a space-separated `scope` is split). */
  scopes: string[];
  /** The status answered. */
  status: number;
}

/** Options of {@linkcode TokenServer.issue}. */
export interface IssueOptions {
  /** The `sub` claim. @default {""} */
  user?: string;
  /** Lifetime in seconds. @default {the server's expiresIn} */
  expiresIn?: number;
  /** Clock offset in seconds. @default {the server's clockOffset} */
  clockOffset?: number;
  /** The `aud` claim. @default {the server's service} */
  audience?: string;
  /** The `iss` claim. @default {the server's issuer} */
  issuer?: string;
}

/** A running token server. */
export interface TokenServer extends AsyncDisposable {
  /** The realm URL, `http://127.0.0.1:PORT/token` (`https://` with `tls`). */
  realm: string;
  /** The service name: the registry's `service` and the JWT audience. */
  service: string;
  /** The issuer: the registry's `issuer` and the JWT `iss`. */
  issuer: string;
  /** The PEM certificate of the signing key, the registry's `rootcertbundle`. */
  certPath: string;
  /** Every request answered, in order. */
  requests: TokenRequest[];
  /**
   * Signs a token without a request, for tests that need a particular one (wrong audience,
   * expired, more access than a client would get).
   */
  issue(access: Access[], options?: IssueOptions): Promise<string>;
  /** Stops the server and removes its key. Safe to call twice. */
  stop(): Promise<void>;
}

const SERVICE = "oci-test-registry";
const ISSUER = "oci-test-issuer";

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  return base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/** RFC 4648 base32 without padding. */
function base32(bytes: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** The libtrust key ID: SHA-256 of the DER public key, 240 bits, base32 in groups of 4. */
async function libtrustKeyId(spki: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", spki));
  return base32(hash.subarray(0, 30)).match(/.{4}/g)!.join(":");
}

/** Parses `repository:name:pull,push`; the name is everything between the first and last colon. */
function parseScope(scope: string): Access {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || first === last || last === first + 1) {
    throw new SyntaxError(
      `Cannot parse scope ${JSON.stringify(scope)}: expected type:name:actions`,
    );
  }
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter((a) => a !== ""),
  };
}

function errorResponse(
  status: number,
  code: string,
  message: string,
): Response {
  return Response.json({ errors: [{ code, message }] }, { status });
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `Cannot run ${command} ${
        args.join(" ")
      }: it exited with code ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Starts a token server on 127.0.0.1 with a fresh RSA key and self-signed certificate made by
 * `openssl` (one per server, so two servers do not trust each other's tokens).
 *
 * `GET /token?service=…&scope=…` (Basic credentials optional, `offline_token=true` adds a
 * `refresh_token`) and the OAuth2 form `POST /token` (`grant_type=password` with `username` and
 * `password`, or `grant_type=refresh_token`; `access_type=offline` adds a `refresh_token`). Wrong
 * credentials get 401, a `service` other than this server's or an unparseable scope 400, all
 * with a distribution-style body `{"errors":[{"code","message"}]}`.
 *
 * @param options Users, anonymous access, lifetimes and answer shape.
 * @returns The running server; dispose of it (or call `stop`) to stop it.
 * @throws {Error} When `openssl` is missing or fails.
 *
 * @example Get an anonymous pull token
 * ```ts
 * import assert from "node:assert/strict";
 * import { peerAvailable } from "./available.ts";
 * import { startTokenServer } from "./token_server.ts";
 *
 * if (peerAvailable("openssl")) {
 *   await using tokens = await startTokenServer();
 *   const response = await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:app:pull`);
 *   const body = await response.json();
 *   assert.equal(body.expires_in, 300);
 *   assert.equal(body.token.split(".").length, 3);
 *   assert.deepEqual(tokens.requests[0].scopes, ["repository:app:pull"]);
 * }
 * ```
 */
export async function startTokenServer(
  options: TokenServerOptions = {},
): Promise<TokenServer> {
  assertPeer("openssl");
  const dir = await Deno.makeTempDir({ prefix: "oci-token-" });
  try {
    return await serveTokens(dir, options);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

async function serveTokens(
  dir: string,
  options: TokenServerOptions,
): Promise<TokenServer> {
  const keyPath = `${dir}/key.pem`;
  const certPath = `${dir}/cert.pem`;
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    "/CN=oci-test-token-issuer",
  ]);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyPath)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const certDer = pemBody(await Deno.readTextFile(certPath));
  const signingKey = options.keyHeader === "kid"
    ? {
      kid: await libtrustKeyId(
        pemBody(
          await run("openssl", ["x509", "-in", certPath, "-pubkey", "-noout"]),
        ),
      ),
    }
    : { x5c: [base64(certDer)] };
  const expiresIn = options.expiresIn ?? 300;
  const clockOffset = options.clockOffset ?? 0;
  const anonymous = options.anonymous ?? true;
  const requests: TokenRequest[] = [];
  const refreshTokens = new Map(Object.entries(options.refreshTokens ?? {}));

  async function issue(
    access: Access[],
    issued: IssueOptions = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000) +
      (issued.clockOffset ?? clockOffset);
    const header = { typ: "JWT", alg: "RS256", ...signingKey };
    const claims = {
      iss: issued.issuer ?? ISSUER,
      sub: issued.user ?? "",
      aud: issued.audience ?? SERVICE,
      exp: now + (issued.expiresIn ?? expiresIn),
      nbf: now,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const input = `${base64url(JSON.stringify(header))}.${
      base64url(JSON.stringify(claims))
    }`;
    const signature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      key,
      new TextEncoder().encode(input),
    );
    return `${input}.${base64url(new Uint8Array(signature))}`;
  }

  function defaultGrant(user: string | undefined, scope: Access): string[] {
    if (user !== undefined) return scope.actions;
    if (Array.isArray(anonymous) && !anonymous.includes(scope.name)) return [];
    return scope.actions.filter((action) => action === "pull");
  }

  /** Who the request is, or the 401 to answer. */
  function authenticate(
    request: Request,
    form: URLSearchParams | undefined,
  ): { user?: string; presented: boolean; refused?: string } {
    if (form) {
      const grantType = form.get("grant_type");
      if (grantType === "password") {
        const user = form.get("username") ?? "";
        const ok = options.users?.[user] === form.get("password");
        return {
          user,
          presented: true,
          refused: ok ? undefined : "invalid username or password",
        };
      }
      if (grantType === "refresh_token") {
        const user = refreshTokens.get(form.get("refresh_token") ?? "");
        return {
          user,
          presented: true,
          refused: user === undefined ? "invalid refresh token" : undefined,
        };
      }
    }
    const authorization = request.headers.get("authorization");
    if (authorization !== null) {
      const [scheme, credentials = ""] = authorization.split(" ", 2);
      let decoded: string | undefined;
      try {
        decoded = scheme.toLowerCase() === "basic"
          ? atob(credentials)
          : undefined;
      } catch {
        decoded = undefined;
      }
      const colon = decoded?.indexOf(":") ?? -1;
      if (decoded === undefined || colon < 0) {
        return {
          presented: true,
          refused: "unsupported or malformed Authorization header",
        };
      }
      const user = decoded.slice(0, colon);
      const ok = options.users?.[user] === decoded.slice(colon + 1);
      return {
        user,
        presented: true,
        refused: ok ? undefined : "invalid username or password",
      };
    }
    if (anonymous === false) {
      return { presented: false, refused: "authentication required" };
    }
    return { presented: false };
  }

  async function answer(request: Request): Promise<[Response, TokenRequest]> {
    const url = new URL(request.url);
    const form = request.method === "POST"
      ? new URLSearchParams(await request.text())
      : undefined;
    const params = form ?? url.searchParams;
    const scopes = params.getAll("scope").flatMap((s) => s.split(" ")).filter(
      (s) => s !== "",
    );
    const who = authenticate(request, form);
    const record: TokenRequest = {
      url: request.url,
      authorized: who.presented,
      user: who.user,
      scopes,
      status: 200,
    };
    if (
      url.pathname !== "/token" || !["GET", "POST"].includes(request.method)
    ) {
      return [
        errorResponse(404, "NOT_FOUND", "only GET and POST /token are served"),
        record,
      ];
    }
    const service = params.get("service");
    if (service !== null && service !== SERVICE) {
      return [
        errorResponse(
          400,
          "UNSUPPORTED",
          `service ${JSON.stringify(service)} is not ${
            JSON.stringify(SERVICE)
          }`,
        ),
        record,
      ];
    }
    if (who.refused !== undefined) {
      return [errorResponse(401, "UNAUTHORIZED", who.refused), record];
    }
    let access: Access[];
    try {
      access = scopes.map(parseScope).map((scope) => ({
        ...scope,
        actions: (options.grant ?? defaultGrant)(who.user, scope),
      }));
    } catch (error) {
      return [
        errorResponse(400, "INVALID_SCOPE", (error as Error).message),
        record,
      ];
    }
    const token = await issue(access, { user: who.user });
    const field = options.field ?? (form ? "access_token" : "token");
    const body: Record<string, unknown> = {};
    if (field === "token" || field === "both") body.token = token;
    if (field === "access_token" || field === "both") body.access_token = token;
    if (!options.omitExpiresIn) body.expires_in = expiresIn;
    body.issued_at = new Date(Date.now() + clockOffset * 1000).toISOString();
    const offline = form
      ? form.get("access_type") === "offline" ||
        form.get("grant_type") === "refresh_token"
      : params.get("offline_token") === "true";
    if (offline && who.user !== undefined) {
      const refreshToken = crypto.randomUUID();
      refreshTokens.set(refreshToken, who.user);
      body.refresh_token = refreshToken;
    }
    if (form) body.scope = scopes.join(" ");
    return [Response.json(body), record];
  }

  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      onListen() {},
      onError(error) {
        return errorResponse(500, "UNKNOWN", String(error));
      },
    },
    async (request) => {
      const [response, record] = await answer(request);
      record.status = response.status;
      requests.push(record);
      return response;
    },
  );

  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
    return stopping;
  }
  return {
    realm: `${
      options.tls ? "https" : "http"
    }://127.0.0.1:${server.addr.port}/token`,
    service: SERVICE,
    issuer: ISSUER,
    certPath,
    requests,
    issue,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
