/**
 * A Docker token server for tests: issues RS256 JWTs that the CNCF distribution registry's
 * `token` auth accepts (certificate chain in `x5c`, string `aud` = the service), with Basic
 * credentials or anonymously, `token` or `access_token`, and a chosen `expires_in`.
 *
 * @module
 */
import { assertPeer } from "./peers.ts";

/** One `scope` entry: `repository:<name>:<actions>`. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Options of {@linkcode startTokenServer}. */
export interface TokenServerOptions {
  /** Accepted Basic credentials at the realm; wrong ones get 401. */
  users?: Record<string, string>;
  /** Anonymous requests get pull-only tokens when true (the default); refused (401) when false. */
  anonymous?: boolean;
  /** `expires_in` and the JWT lifetime in seconds. @default {300} */
  expiresIn?: number;
  /** Which field carries the token. @default {"token"} */
  field?: "token" | "access_token";
  /** Omit `expires_in` from the response. */
  omitExpiresIn?: boolean;
}

/** A running token server. */
export interface TokenServer extends AsyncDisposable {
  /** The realm URL (`http://127.0.0.1:PORT/token`). */
  realm: string;
  /** The service name (also the JWT audience). */
  service: string;
  /** The issuer. */
  issuer: string;
  /** The PEM certificate to give the registry as `rootcertbundle`. */
  certPath: string;
  /** Every request: the scopes asked, who asked, and what was answered. */
  requests: { scopes: string[]; user?: string; status: number }[];
  /** Stops the server and removes its key. */
  stop(): Promise<void>;
}

function base64url(bytes: Uint8Array | string): string {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes;
  return btoa(String.fromCharCode(...data)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  )
    .replace(/=+$/, "");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const base64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return new Uint8Array(Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

/** Parses `repository:name:pull,push` (names may contain ':' only in a registry port, not here). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || first === last) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter((a) => a),
  };
}

/** Starts a token server on 127.0.0.1 with a fresh RSA key and self-signed certificate. */
export async function startTokenServer(
  options: TokenServerOptions = {},
): Promise<TokenServer> {
  assertPeer("openssl");
  const dir = await Deno.makeTempDir({ prefix: "oci-token-" });
  const keyPath = `${dir}/key.pem`;
  const certPath = `${dir}/cert.pem`;
  const made = await new Deno.Command("openssl", {
    args: [
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
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (made.code !== 0) {
    throw new Error(
      `openssl could not make a test key: ${
        new TextDecoder().decode(made.stderr)
      }`,
    );
  }
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyPath)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const certDer = pemBody(await Deno.readTextFile(certPath));
  const service = "oci-test-registry";
  const issuer = "oci-test-issuer";
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenServer["requests"] = [];

  async function sign(
    user: string | undefined,
    access: Access[],
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const header = {
      alg: "RS256",
      typ: "JWT",
      x5c: [btoa(String.fromCharCode(...certDer))],
    };
    const claims = {
      iss: issuer,
      sub: user ?? "",
      aud: service,
      exp: now + expiresIn,
      nbf: now - 5,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const input = `${base64url(JSON.stringify(header))}.${
      base64url(JSON.stringify(claims))
    }`;
    const signature = new Uint8Array(
      await crypto.subtle.sign(
        "RSASSA-PKCS1-v1_5",
        key,
        new TextEncoder().encode(input),
      ),
    );
    return `${input}.${base64url(signature)}`;
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const url = new URL(request.url);
      let params = url.searchParams;
      if (request.method === "POST") {
        params = new URLSearchParams(await request.text());
      }
      const scopes = params.getAll("scope").flatMap((s) => s.split(" ")).filter(
        (s) => s,
      );
      let user: string | undefined;
      const authorization = request.headers.get("authorization");
      if (authorization?.startsWith("Basic ")) {
        const decoded = atob(authorization.slice(6));
        const colon = decoded.indexOf(":");
        const name = decoded.slice(0, colon);
        const password = decoded.slice(colon + 1);
        if (options.users?.[name] !== password) {
          requests.push({ scopes, user: name, status: 401 });
          return Response.json(
            {
              errors: [{
                code: "UNAUTHORIZED",
                message: "invalid username or password",
              }],
            },
            { status: 401 },
          );
        }
        user = name;
      } else if (options.anonymous === false) {
        requests.push({ scopes, status: 401 });
        return Response.json(
          {
            errors: [{
              code: "UNAUTHORIZED",
              message: "authentication required",
            }],
          },
          { status: 401 },
        );
      }
      const access = scopes.flatMap((scope) => {
        const parsed = parseScope(scope);
        if (!parsed) return [];
        // Users get what they ask for; anonymous clients may only pull.
        const actions = user
          ? parsed.actions
          : parsed.actions.filter((a) => a === "pull");
        return [{ ...parsed, actions }];
      });
      const token = await sign(user, access);
      requests.push({ scopes, user, status: 200 });
      return Response.json({
        [options.field ?? "token"]: token,
        ...(options.omitExpiresIn ? {} : { expires_in: expiresIn }),
        issued_at: new Date().toISOString(),
      });
    },
  );

  const stop = async () => {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    service,
    issuer,
    certPath,
    requests,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
