/**
 * Optional authentication for the embedded registry: htpasswd-style Basic credentials, and
 * Bearer tokens from its own token endpoint (HMAC-signed, scoped, with `expires_in`), so that
 * a client's whole auth flow can be exercised without other servers.
 *
 * Password entries (bcrypt is not in the standard library): `{PBKDF2}<iterations>$<salt>$<hash>`
 * (PBKDF2-SHA-256, base64; make one with {@linkcode hashPassword}), `{SHA}<base64 sha1>` (as
 * `htpasswd -s` writes), or `{PLAIN}<password>` for tests.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** Options of the registry's authentication. */
export interface RegistryAuthOptions {
  /** Users and their password entries. */
  readonly users: Readonly<Record<string, string>>;
  /**
   * Issue Bearer tokens from `/token` instead of accepting Basic on every request.
   * `anonymousPull` lets clients without credentials get pull-only tokens.
   */
  readonly token?: {
    readonly expiresIn?: number;
    readonly anonymousPull?: boolean;
    /** HMAC key; random per server when not given. */
    readonly secret?: string;
    /**
     * The service named in challenges and bound into every token (`aud`): a token issued for
     * another service is refused even when the two share `secret`.
     * @default {"oci-registry"}
     */
    readonly service?: string;
  };
  /** The realm named in challenges. @default {"oci"} */
  readonly realm?: string;
}

const ENCODER = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-")
    .replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return new Uint8Array(Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

async function pbkdf2(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    ENCODER.encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations },
      key,
      256,
    ),
  );
}

/**
 * Makes a `{PBKDF2}` password entry for {@linkcode RegistryAuthOptions.users}.
 *
 * @param password The password.
 * @param iterations PBKDF2 iterations.
 * @returns The entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword, verifyPassword } from "./auth.ts";
 * const entry = await hashPassword("s3cret", 1000);
 * assert.ok(await verifyPassword(entry, "s3cret"));
 * assert.ok(!(await verifyPassword(entry, "wrong")));
 * ```
 */
export async function hashPassword(
  password: string,
  iterations = 100_000,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, iterations);
  return `{PBKDF2}${iterations}$${btoa(String.fromCharCode(...salt))}$${
    btoa(String.fromCharCode(...hash))
  }`;
}

/**
 * Checks a password against an entry (`{PBKDF2}`, `{SHA}` or `{PLAIN}`), in constant time.
 *
 * @param entry The stored entry.
 * @param password The password given.
 * @returns True when it matches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyPassword } from "./auth.ts";
 * assert.ok(await verifyPassword("{PLAIN}pw", "pw"));
 * assert.ok(await verifyPassword("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password"));
 * ```
 */
export async function verifyPassword(
  entry: string,
  password: string,
): Promise<boolean> {
  const decode = (text: string) =>
    new Uint8Array(Array.from(atob(text), (c) => c.charCodeAt(0)));
  if (entry.startsWith("{PBKDF2}")) {
    const [iterations, salt, hash] = entry.slice(8).split("$");
    const actual = await pbkdf2(password, decode(salt), Number(iterations));
    return sameBytes(actual, decode(hash));
  }
  if (entry.startsWith("{SHA}")) {
    const actual = createHash("sha1").update(password).digest();
    return sameBytes(new Uint8Array(actual), decode(entry.slice(5)));
  }
  if (entry.startsWith("{PLAIN}")) {
    return sameBytes(ENCODER.encode(entry.slice(7)), ENCODER.encode(password));
  }
  return false;
}

/** One grant in a token: a repository and its actions. */
interface Access {
  /** `registry` for `registry:catalog:*`; absent (or `repository`) for repositories. */
  type?: string;
  name: string;
  actions: string[];
}

/** What a signed token says. */
interface TokenPayload {
  sub: string;
  aud: string;
  access: Access[];
  exp: number;
}

/**
 * What a request needs: a repository and an action, nothing for `/v2/`, or the catalog
 * (`action: "catalog"`, the token scope `registry:catalog:*`, as distribution asks).
 */
export interface Need {
  /** The repository, or undefined for `/v2/`, the token endpoint and the catalog. */
  readonly repository?: string;
  /** What the request does to it. */
  readonly action: "pull" | "push" | "delete" | "catalog";
}

/**
 * The authentication of one registry: checks requests, answers the token endpoint.
 */
export interface RegistryAuth {
  /** Answers `/token` requests. */
  token(request: Request): Promise<Response>;
  /**
   * Undefined when the request may go on, else the 401 to send. A request that acts on more
   * than one repository (a mount reads its source) passes every need, and the challenge of the
   * refusal names them all, so that a client can ask for one token that covers the request.
   */
  check(
    request: Request,
    needs: Need | readonly Need[],
  ): Promise<Response | undefined>;
}

/** The token actions a need takes: writes need `pull` and `push`, as distribution asks. */
function actionsOf(need: Need): string[] {
  if (need.action === "catalog") return ["*"];
  return need.action === "push" ? ["pull", "push"] : [need.action];
}

/**
 * The scopes of a challenge for some needs, one per repository with the union of its actions:
 * `repository:b:pull,push repository:a:pull`.
 */
function scopesOf(needs: readonly Need[]): string {
  const byRepository = new Map<string, Set<string>>();
  for (const need of needs) {
    if (need.repository === undefined) continue;
    const actions = byRepository.get(need.repository) ?? new Set();
    for (const action of actionsOf(need)) actions.add(action);
    byRepository.set(need.repository, actions);
  }
  const order = ["pull", "push", "delete"];
  return [
    ...[...byRepository].map(([name, actions]) =>
      `repository:${name}:${order.filter((a) => actions.has(a)).join(",")}`
    ),
    ...(needs.some((need) => need.action === "catalog")
      ? ["registry:catalog:*"]
      : []),
  ].join(" ");
}

/**
 * Whether a token's grants cover a need: every action it takes, on exactly its repository (no
 * prefixes, no case folding; grants of one name add up).
 */
function allows(access: readonly Access[], need: Need): boolean {
  if (need.action === "catalog") {
    return access.some((entry) =>
      entry.type === "registry" && entry.name === "catalog" &&
      entry.actions.includes("*")
    );
  }
  if (need.repository === undefined) return true;
  const granted = new Set(
    access.filter((entry) =>
      (entry.type ?? "repository") === "repository" &&
      entry.name === need.repository
    ).flatMap((entry) => entry.actions),
  );
  return granted.has("*") ||
    actionsOf(need).every((action) => granted.has(action));
}

/** A verified token's payload if it has the shape this server signs, else undefined. */
function asTokenPayload(value: unknown): TokenPayload | undefined {
  const payload = value as Partial<TokenPayload> | null;
  const wellFormed = typeof payload === "object" && payload !== null &&
    typeof payload.aud === "string" && typeof payload.exp === "number" &&
    Array.isArray(payload.access) &&
    payload.access.every((entry) =>
      typeof entry?.name === "string" && Array.isArray(entry.actions) &&
      entry.actions.every((action) => typeof action === "string")
    );
  return wellFormed ? payload as TokenPayload : undefined;
}

function unauthorized(challenge: string, message: string): Response {
  return Response.json(
    { errors: [{ code: "UNAUTHORIZED", message }] },
    {
      status: 401,
      headers: {
        "www-authenticate": challenge,
        "docker-distribution-api-version": "registry/2.0",
      },
    },
  );
}

/**
 * Builds the registry's authentication from its options.
 *
 * @param options Users, token settings, realm.
 * @returns The checker and the token endpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistryAuth } from "./auth.ts";
 * const auth = await createRegistryAuth({ users: { u: "{PLAIN}p" } });
 * const denied = await auth.check(new Request("http://r/v2/"), { action: "pull" });
 * assert.equal(denied?.status, 401);
 * ```
 */
export async function createRegistryAuth(
  options: RegistryAuthOptions,
): Promise<RegistryAuth> {
  const realm = options.realm ?? "oci";
  const service = options.token?.service ?? "oci-registry";
  const key = await crypto.subtle.importKey(
    "raw",
    options.token?.secret !== undefined
      ? ENCODER.encode(options.token.secret)
      : crypto.getRandomValues(new Uint8Array(32)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  const expiresIn = options.token?.expiresIn ?? 300;

  async function basicUser(
    request: Request,
  ): Promise<string | undefined | false> {
    const header = request.headers.get("authorization");
    if (header === null || !/^basic /i.test(header)) return undefined;
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(fromBase64url(header.slice(6).trim()));
    } catch {
      return false;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const entry = options.users[user];
    if (entry === undefined) return false;
    return (await verifyPassword(entry, decoded.slice(colon + 1)))
      ? user
      : false;
  }

  async function sign(payload: unknown): Promise<string> {
    const body = base64url(ENCODER.encode(JSON.stringify(payload)));
    const signature = new Uint8Array(
      await crypto.subtle.sign("HMAC", key, ENCODER.encode(body)),
    );
    return `${body}.${base64url(signature)}`;
  }

  /** The payload of a token this server signed for its service and that has not expired. */
  async function verify(token: string): Promise<TokenPayload | undefined> {
    const [body, signature] = token.split(".");
    if (!body || !signature) return undefined;
    try {
      const valid = await crypto.subtle.verify(
        "HMAC",
        key,
        fromBase64url(signature),
        ENCODER.encode(body),
      );
      if (!valid) return undefined;
      const payload = asTokenPayload(
        JSON.parse(new TextDecoder().decode(fromBase64url(body))),
      );
      return payload !== undefined && payload.aud === service &&
          payload.exp * 1000 > Date.now()
        ? payload
        : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    async token(request) {
      const url = new URL(request.url);
      const user = await basicUser(request);
      if (user === false) {
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
      if (user === undefined && !options.token?.anonymousPull) {
        return Response.json(
          {
            errors: [{
              code: "UNAUTHORIZED",
              message: "credentials are required",
            }],
          },
          { status: 401 },
        );
      }
      const asked = url.searchParams.get("service");
      if (asked !== null && asked !== service) {
        return Response.json(
          {
            errors: [{
              code: "DENIED",
              message:
                `this endpoint issues tokens for the service "${service}", not "${asked}"`,
            }],
          },
          { status: 400 },
        );
      }
      const access: Access[] = url.searchParams.getAll("scope")
        .flatMap((scope) => scope.split(" "))
        .flatMap((scope): Access[] => {
          // The catalog lists every repository's name: for users who logged in only.
          if (scope === "registry:catalog:*") {
            return user === undefined
              ? []
              : [{ type: "registry", name: "catalog", actions: ["*"] }];
          }
          const match = /^repository:([^:]+):(.+)$/.exec(scope);
          if (!match) return [];
          const asked = match[2].split(",");
          const actions = user === undefined
            ? asked.filter((a) => a === "pull")
            : asked.filter((a) => ["pull", "push", "delete", "*"].includes(a));
          return [{ name: match[1], actions }];
        });
      const payload: TokenPayload = {
        sub: user ?? "",
        aud: service,
        access,
        exp: Math.floor(Date.now() / 1000) + expiresIn,
      };
      const token = await sign(payload);
      return Response.json({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      });
    },
    async check(request, needs) {
      const list: readonly Need[] = "action" in needs ? [needs] : needs;
      if (options.token === undefined) {
        const user = await basicUser(request);
        if (user) return undefined;
        return unauthorized(
          `Basic realm="${realm}"`,
          user === false
            ? "invalid username or password"
            : "authentication required",
        );
      }
      const scope = scopesOf(list);
      const origin = new URL(request.url).origin;
      const challenge = `Bearer realm="${origin}/token",service="${service}"${
        scope ? `,scope="${scope}"` : ""
      }`;
      const header = request.headers.get("authorization");
      const payload = header !== null && /^bearer /i.test(header)
        ? await verify(header.slice(7).trim())
        : undefined;
      if (payload === undefined) {
        return unauthorized(challenge, "authentication required");
      }
      const missing = list.find((need) => !allows(payload.access, need));
      return missing === undefined ? undefined : unauthorized(
        `${challenge},error="insufficient_scope"`,
        missing.action === "catalog"
          ? "the token does not allow reading the catalog (registry:catalog:*)"
          : `the token does not allow ${
            actionsOf(missing).join(",")
          } on ${missing.repository}`,
      );
    },
  };
}
