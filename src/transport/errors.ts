/**
 * Errors that carry the failed request, and the status check every registry call ends with.
 *
 * @module
 */

import { concatBytes } from "../io/bytes.ts";

/** One entry of an OCI error body: `{"errors": [{"code", "message", "detail"}]}`. */
export interface RegistryErrorCode {
  /** The registry's code, e.g. `BLOB_UNKNOWN`, `MANIFEST_INVALID`, `UNAUTHORIZED`. */
  readonly code: string;
  /** The registry's human-readable message. */
  readonly message: string;
  /** Whatever the registry put in `detail`. */
  readonly detail?: unknown;
}

/** Query parameters whose values are secrets in some registries' or storage backends' URLs. */
const SECRET_QUERY_REGEXP =
  /^(?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|awsaccesskeyid|signature|sig|token|access_token|refresh_token|id_token|password|passwd|secret|client_secret|key|api_key|apikey|auth|jwt|code|se|st|sp|skoid|sktid|skt|ske|sks|skv)$/i;

/** Shortest value remembered as a secret: shorter ones cannot be told apart from prose. */
const MIN_SECRET_LENGTH = 4;
/** Most secrets remembered; the oldest are forgotten first (tokens are renewed all the time). */
const MAX_KNOWN_SECRETS = 512;
/** Every written form of the secrets seen, by secret: redacted wherever they appear. */
const knownSecrets = new Map<string, readonly string[]>();

/**
 * Remembers a credential the client holds (a password, a token, an identity token, the base64
 * of `user:password`), so that {@linkcode redactSecrets} and {@linkcode redactUrl} replace it
 * wherever it appears, as sent or URL-encoded, form-encoded, JSON-escaped or in base64, even
 * where no pattern would recognise it (a registry that echoes `you sent <the password>`). The
 * auth layer calls it for every credential it uses and every token it gets; values shorter than
 * 4 characters are not remembered.
 *
 * @param value The secret.
 *
 * @example A password echoed by a registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactSecrets, rememberSecret } from "./errors.ts";
 * rememberSecret("hunter2-s3cr3t");
 * assert.equal(redactSecrets("you sent hunter2-s3cr3t"), "you sent REDACTED");
 * assert.equal(redactSecrets("you sent aHVudGVyMi1zM2NyM3Q="), "you sent REDACTED");
 * ```
 */
export function rememberSecret(value: string): void {
  if (value.length < MIN_SECRET_LENGTH) return;
  const forms = knownSecrets.get(value);
  if (forms !== undefined) {
    // Seen again: the most recently used are the last forgotten.
    knownSecrets.delete(value);
    knownSecrets.set(value, forms);
    return;
  }
  knownForms = undefined;
  knownSecrets.set(value, writtenForms(value));
  if (knownSecrets.size > MAX_KNOWN_SECRETS) {
    knownSecrets.delete(knownSecrets.keys().next().value!);
  }
}

/** A secret as it may be written back: as is, URL- or form-encoded, JSON-escaped, in base64. */
function writtenForms(value: string): string[] {
  const encoded = encodeURIComponent(value);
  const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(value)));
  const forms = new Set([
    value,
    encoded,
    encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
    new URLSearchParams({ v: value }).toString().slice(2),
    JSON.stringify(value).slice(1, -1),
    base64,
    base64.replace(/=+$/, ""),
    base64.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_"),
  ]);
  return [...forms].filter((form) => form.length >= MIN_SECRET_LENGTH);
}

/** Every form of every remembered secret, longest first; rebuilt after a change. */
let knownForms: readonly string[] | undefined;

/** Replaces every written form of every remembered secret, longest first (so that the base64 of
 * `user:password` goes whole, not cut by the base64 of the password it may contain). */
function redactKnownSecrets(text: string): string {
  knownForms ??= [...new Set([...knownSecrets.values()].flat())]
    .sort((a, b) => b.length - a.length);
  let redacted = text;
  for (const form of knownForms) {
    if (redacted.includes(form)) {
      redacted = redacted.replaceAll(form, "REDACTED");
    }
  }
  return redacted;
}

/** Decodes a query key for comparison; a malformed escape is compared as it is. */
function decodeQueryKey(key: string): string {
  try {
    return decodeURIComponent(key.replaceAll("+", " "));
  } catch {
    return key;
  }
}

/**
 * Removes credentials from a URL so that it can appear in a message or a log: userinfo, the
 * values of query parameters that hold signatures or tokens, and any secret remembered by
 * {@linkcode rememberSecret}. The fragment is left out.
 *
 * @param url The URL.
 * @returns The URL with secrets replaced by `REDACTED`.
 *
 * @example Redact userinfo and a signed query
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./errors.ts";
 * assert.equal(
 *   redactUrl("https://u:p@s3.example/blob?X-Amz-Signature=abc&part=1"),
 *   "https://REDACTED@s3.example/blob?X-Amz-Signature=REDACTED&part=1",
 * );
 * ```
 */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactKnownSecrets(
      String(url).replace(/\/\/[^/@]*@/, "//REDACTED@").replace(
        /([?&][^=&#]*=)[^&#]*/g,
        (all, key: string) =>
          SECRET_QUERY_REGEXP.test(decodeQueryKey(key.slice(1, -1)))
            ? `${key}REDACTED`
            : all,
      ),
    );
  }
  // `data:`, `javascript:` and other URLs without an authority have no `//`.
  const authority = parsed.href.startsWith(`${parsed.protocol}//`);
  let text = authority ? `${parsed.protocol}//` : parsed.protocol;
  if (parsed.username || parsed.password) text += "REDACTED@";
  text += `${parsed.host}${parsed.pathname}`;
  if (parsed.search) {
    const parts = parsed.search.slice(1).split("&").map((part) => {
      const eq = part.indexOf("=");
      const key = decodeQueryKey(eq < 0 ? part : part.slice(0, eq));
      return eq >= 0 && SECRET_QUERY_REGEXP.test(key)
        ? `${part.slice(0, eq)}=REDACTED`
        : part;
    });
    text += `?${parts.join("&")}`;
  }
  return redactKnownSecrets(text);
}

/** A URL with a scheme inside prose, up to whitespace, quotes or brackets. */
const URL_IN_TEXT_REGEXP = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()\[\]{}`]+/gi;

/** {@linkcode redactUrl} on every URL in a text that has userinfo or a query. */
function redactUrlsIn(text: string): string {
  return text.replace(URL_IN_TEXT_REGEXP, (match) => {
    if (!match.includes("@") && !match.includes("?")) return match;
    const url = match.replace(/[.,:;!]+$/, "");
    return redactUrl(url) + match.slice(url.length);
  });
}

/** Credentials as they travel: auth schemes with their value, JWTs, token fields. */
const SECRET_TEXT_REGEXPS: readonly [RegExp, string][] = [
  // A credential after its scheme has digits or base64 signs, which prose and a challenge's
  // parameters (`Basic realm="…"`) do not.
  [
    /\b(Basic|Bearer)\s+(?![a-z_]+=)(?=[A-Za-z._~-]*[0-9+/=])[A-Za-z0-9+/._~-]{8,}=*/gi,
    "$1 REDACTED",
  ],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, "REDACTED"],
  [
    /("(?:access_token|refresh_token|id_token|token|password|secret|authorization)"\s*:\s*")(?:[^"\\]|\\.)*/gi,
    "$1REDACTED",
  ],
  // `password=…`, `token: …` in prose, a form body or a query.
  [
    /\b((?:access_token|refresh_token|id_token|identity_?token|token|password|passwd|secret|client_secret)\s*[=:]\s*)(?!REDACTED)[^&\s"',;]+/gi,
    "$1REDACTED",
  ],
];

/**
 * Removes credentials from text a registry sent back (an error body may repeat the
 * `Authorization` header, a token, or a password field) or any message about to be shown: every
 * secret remembered by {@linkcode rememberSecret} in any of its written forms, `Basic …`/`Bearer
 * …` values, JWTs, `token`/`password`/`authorization` fields, `password=…` and the userinfo and
 * signed queries of URLs.
 *
 * @param text The text.
 * @returns The text with credentials replaced by `REDACTED`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactSecrets } from "./errors.ts";
 * assert.equal(redactSecrets("you sent Basic YWxpY2U6cHc="), "you sent Basic REDACTED");
 * assert.equal(redactSecrets('Basic realm="registry"'), 'Basic realm="registry"');
 * assert.equal(redactSecrets('{"token":"abc.def"}'), '{"token":"REDACTED"}');
 * assert.equal(redactSecrets("you sent password=pw1"), "you sent password=REDACTED");
 * assert.equal(redactSecrets("see http://s/b?sig=abc."), "see http://s/b?sig=REDACTED.");
 * ```
 */
export function redactSecrets(text: string): string {
  let redacted = redactKnownSecrets(text);
  for (const [regexp, replacement] of SECRET_TEXT_REGEXPS) {
    redacted = redacted.replace(regexp, replacement);
  }
  return redactUrlsIn(redacted);
}

/**
 * Redacts, in place, the message and stack of an error and of every error in its cause chain
 * (see {@linkcode redactSecrets}), so that whatever prints it, its inspection included, shows
 * no credential. Values that are not errors are left as they are.
 *
 * @param error Anything thrown.
 * @returns The same value, for rethrowing.
 *
 * @example A cause that quotes a password
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactError } from "./errors.ts";
 * const error = new Error("failed", { cause: new Error("you sent password=pw1") });
 * redactError(error);
 * assert.equal((error.cause as Error).message, "you sent password=REDACTED");
 * ```
 */
export function redactError<T>(error: T): T {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    for (const key of ["message", "stack"] as const) {
      const text = current[key];
      if (typeof text !== "string") continue;
      const redacted = redactSecrets(text);
      if (redacted === text) continue;
      try {
        Object.defineProperty(current, key, {
          value: redacted,
          writable: true,
          configurable: true,
        });
      } catch {
        // A frozen error keeps its text; there is nothing else to do with it here.
      }
    }
    current = current.cause;
  }
  return error;
}

/** {@linkcode redactSecrets} through every string of a JSON-like value. */
function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactSecrets(value);
  if (depth > 8 || typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      /^(authorization|token|access_token|refresh_token|password|secret)$/i
          .test(k)
        ? "REDACTED"
        : redactDeep(v, depth + 1),
    ]),
  );
}

/**
 * A registry answered with a status the caller did not expect. Carries the method, the redacted
 * URL, the status and the registry's own error codes.
 *
 * @example Check the registry's code
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryError } from "./errors.ts";
 * const error = new RegistryError({
 *   method: "GET",
 *   url: "http://127.0.0.1:5000/v2/app/manifests/v1",
 *   status: 404,
 *   statusText: "Not Found",
 *   codes: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }],
 * });
 * assert.equal(error.message, "GET http://127.0.0.1:5000/v2/app/manifests/v1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown");
 * assert.ok(error.hasCode("MANIFEST_UNKNOWN"));
 * ```
 */
export class RegistryError extends Error {
  /** The HTTP method of the failed request. */
  readonly method: string;
  /** The request URL, with credentials redacted. */
  readonly url: string;
  /** The response status. */
  readonly status: number;
  /** The response status text. */
  readonly statusText: string;
  /** The registry's error codes, empty when the body was not an OCI error body. */
  readonly codes: readonly RegistryErrorCode[];

  /**
   * Creates the error.
   *
   * @param init What failed and how the registry answered; `reason` replaces the registry's
   * message in the text, `cause` is kept as the error's cause.
   */
  constructor(init: {
    method: string;
    url: string;
    status: number;
    statusText?: string;
    codes?: readonly RegistryErrorCode[];
    reason?: string;
    body?: string;
    cause?: unknown;
  }) {
    const statusText = init.statusText ?? "";
    // A registry may repeat what it was sent (an Authorization header, a token) in its error
    // body: nothing of the kind is kept in the message or the fields.
    const codes = (init.codes ?? []).map((c) => ({
      ...c,
      message: redactSecrets(c.message),
      ...(c.detail !== undefined ? { detail: redactDeep(c.detail) } : {}),
    }));
    const url = redactUrl(init.url);
    let text = `${init.method} ${url}: ${init.status}${
      statusText ? ` ${statusText}` : ""
    }`;
    if (init.reason) text += `: ${redactSecrets(init.reason)}`;
    if (codes.length > 0) {
      text += `: ${codes.map((c) => `${c.code}: ${c.message}`).join("; ")}`;
    } else if (init.body) text += `: ${redactSecrets(init.body)}`;
    super(text, { cause: redactError(init.cause) });
    this.name = "RegistryError";
    this.method = init.method;
    this.url = url;
    this.status = init.status;
    this.statusText = statusText;
    this.codes = codes;
  }

  /**
   * Tells whether the registry sent an error with this code.
   *
   * @param code An OCI error code such as `BLOB_UNKNOWN`.
   * @returns True when one of the registry's errors has this code.
   *
   * @example Test for a code
   * ```ts
   * import assert from "node:assert/strict";
   * import { RegistryError } from "./errors.ts";
   * const error = new RegistryError({ method: "HEAD", url: "http://r/v2/", status: 401, codes: [{ code: "UNAUTHORIZED", message: "" }] });
   * assert.equal(error.hasCode("DENIED"), false);
   * ```
   */
  hasCode(code: string): boolean {
    return this.codes.some((c) => c.code === code);
  }
}

/** Longest error body kept in a message when it is not an OCI error body. */
const MAX_ERROR_TEXT = 200;
/** Longest error body read at all: a misbehaving server cannot make us read a blob into memory. */
const MAX_ERROR_BODY = 64 * 1024;

async function readErrorBody(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ERROR_BODY) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // The body is only decoration for the error; a broken one must not hide the status.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(
    concatBytes(chunks).subarray(0, MAX_ERROR_BODY),
  );
}

/**
 * Reads an OCI error body (`{"errors": [...]}`) into codes; anything else gives an empty list.
 *
 * @param text The response body.
 * @returns The error codes found.
 *
 * @example Parse an error body
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseErrorBody } from "./errors.ts";
 * const codes = parseErrorBody('{"errors":[{"code":"DENIED","message":"no","detail":{"x":1}}]}');
 * assert.deepEqual(codes, [{ code: "DENIED", message: "no", detail: { x: 1 } }]);
 * assert.deepEqual(parseErrorBody("<html>"), []);
 * ```
 */
export function parseErrorBody(text: string): RegistryErrorCode[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [];
  }
  const errors = (body as { errors?: unknown })?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((entry) => {
    if (typeof entry?.code !== "string") return [];
    const code: RegistryErrorCode = {
      code: entry.code,
      message: typeof entry.message === "string" ? entry.message : "",
      ...(entry.detail !== undefined ? { detail: entry.detail } : {}),
    };
    return [code];
  });
}

/** An error body as one line: HTML tags dropped, control characters and whitespace runs as one space. */
function readableBody(text: string): string {
  // `[^<>]*` keeps this linear on bodies full of unclosed "<".
  const html = /^\s*<(?:!doctype|html|head|body|title|\?xml)/i.test(text);
  const visible = html ? text.replace(/<[^<>]*>/g, " ") : text;
  // deno-lint-ignore no-control-regex
  return visible.replace(/[\s\u0000-\u001f\u007f]+/g, " ").trim();
}

/**
 * Builds a {@linkcode RegistryError} from a response, reading (and closing) its body.
 *
 * @param request The request that failed.
 * @param response The registry's answer.
 * @param reason Optional words on what the caller expected.
 * @returns The error, ready to throw.
 *
 * @example Turn a 404 into an error
 * ```ts
 * import assert from "node:assert/strict";
 * import { registryErrorOf } from "./errors.ts";
 * const response = Response.json({ errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] }, { status: 404 });
 * const error = await registryErrorOf(new Request("http://r/v2/x/tags/list"), response);
 * assert.equal(error.codes[0].code, "NAME_UNKNOWN");
 * ```
 */
export async function registryErrorOf(
  request: Request,
  response: Response,
  reason?: string,
): Promise<RegistryError> {
  const text = request.method === "HEAD" ? "" : await readErrorBody(response);
  if (request.method === "HEAD") await response.body?.cancel();
  const codes = parseErrorBody(text);
  const body = readableBody(text);
  return new RegistryError({
    method: request.method,
    url: request.url,
    status: response.status,
    statusText: response.statusText,
    codes,
    reason,
    body: body.length > MAX_ERROR_TEXT
      ? `${body.slice(0, MAX_ERROR_TEXT)}…`
      : body,
  });
}

/**
 * Checks that a response has one of the expected statuses, and otherwise throws a
 * {@linkcode RegistryError} with the request's method, redacted URL, the status and the
 * registry's error codes. The body of a failed response is read and closed.
 *
 * @param request The request that was sent.
 * @param response The registry's answer.
 * @param expected The statuses that mean success.
 * @returns The same response, for chaining.
 * @throws {RegistryError} When the status is not expected.
 *
 * @example Expect 201
 * ```ts
 * import assert from "node:assert/strict";
 * import { ensureStatus, RegistryError } from "./errors.ts";
 * const request = new Request("http://r/v2/app/blobs/uploads/", { method: "POST" });
 * await ensureStatus(request, new Response(null, { status: 201 }), 201, 202);
 * await assert.rejects(ensureStatus(request, new Response("nope", { status: 500 }), 201), RegistryError);
 * ```
 */
export async function ensureStatus(
  request: Request,
  response: Response,
  ...expected: number[]
): Promise<Response> {
  if (expected.includes(response.status)) return response;
  throw await registryErrorOf(
    request,
    response,
    `expected ${expected.join(" or ")}`,
  );
}

/**
 * A registry answered with a transient status (429, 503, …) and a `Retry-After` longer than
 * retries wait: instead of sleeping silently for minutes or hours (Docker Hub's rate limit asks
 * for hours), the request fails at once with a message that says when to come back, as a time
 * and in seconds. Not retried, neither by the opener nor by the operations.
 *
 * @example A rate limit of two hours
 * ```ts
 * import assert from "node:assert/strict";
 * import { RetryAfterError } from "./errors.ts";
 * const error = new RetryAfterError({
 *   method: "GET",
 *   url: "https://registry.example/v2/app/manifests/v1",
 *   status: 429,
 *   statusText: "Too Many Requests",
 *   retryAt: new Date("2026-12-01T12:00:00Z"),
 *   wait: 7_200_000,
 *   maxWait: 60_000,
 * });
 * assert.equal(
 *   error.message,
 *   "GET https://registry.example/v2/app/manifests/v1: 429 Too Many Requests: the registry asks to wait 7200 s (Retry-After), longer than the 60 s retries wait at most: try again after 2026-12-01T12:00:00Z (in 7200 s)",
 * );
 * ```
 */
export class RetryAfterError extends RegistryError {
  /** When the registry says to come back. */
  readonly retryAt: Date;
  /** How long the registry asked to wait, in milliseconds. */
  readonly wait: number;

  /**
   * Creates the error.
   *
   * @param init What failed, how the registry answered, when to come back, the wait it asked
   * (`wait`) and the longest wait retries accept (`maxWait`), in milliseconds.
   */
  constructor(init: {
    method: string;
    url: string;
    status: number;
    statusText?: string;
    codes?: readonly RegistryErrorCode[];
    body?: string;
    retryAt: Date;
    wait: number;
    maxWait: number;
  }) {
    const seconds = Math.ceil(init.wait / 1000);
    super({
      ...init,
      reason:
        `the registry asks to wait ${seconds} s (Retry-After), longer than the ${
          Math.round(init.maxWait / 1000)
        } s retries wait at most: try again after ${
          init.retryAt.toISOString().replace(/\.\d{3}Z$/, "Z")
        } (in ${seconds} s)`,
    });
    this.name = "RetryAfterError";
    this.retryAt = init.retryAt;
    this.wait = init.wait;
  }
}

/**
 * Builds a {@linkcode RetryAfterError} from a response whose `Retry-After` asks for too long a
 * wait, reading (and closing) its body for the registry's error codes.
 *
 * @param request The request.
 * @param response The registry's answer.
 * @param wait The wait `Retry-After` asks, in milliseconds.
 * @param maxWait The longest wait retries accept, in milliseconds.
 * @param now The current time in milliseconds.
 * @returns The error, ready to throw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryAfterErrorOf } from "./errors.ts";
 * const response = Response.json(
 *   { errors: [{ code: "TOOMANYREQUESTS", message: "rate limit" }] },
 *   { status: 429, headers: { "retry-after": "3600" } },
 * );
 * const error = await retryAfterErrorOf(new Request("http://r/v2/"), response, 3_600_000, 60_000, 0);
 * assert.equal(error.retryAt.toISOString(), "1970-01-01T01:00:00.000Z");
 * assert.ok(error.hasCode("TOOMANYREQUESTS"));
 * ```
 */
export async function retryAfterErrorOf(
  request: Request,
  response: Response,
  wait: number,
  maxWait: number,
  now: number = Date.now(),
): Promise<RetryAfterError> {
  const base = await registryErrorOf(request, response);
  return new RetryAfterError({
    method: base.method,
    url: base.url,
    status: base.status,
    statusText: base.statusText,
    codes: base.codes,
    retryAt: new Date(now + wait),
    wait,
    maxWait,
  });
}

/** The rules a URL sent by a registry must follow before we go there. */
export type UrlRule = "url" | "scheme" | "downgrade";

/**
 * A URL a registry handed us (a redirect's `Location`, a token realm, an upload `Location`, a
 * `Link` to the next page) breaks a rule: it is not a URL (`url`), it leads elsewhere than
 * `http:`/`https:` (`scheme`: `file:` would read a local file, `data:` make up a response), or
 * it leads from `https:` down to plain `http:` on a host that is not loopback (`downgrade`).
 * Names the header, the URL (redacted), where it came from and the rule. Without a header, it
 * is a request that was about to be sent to such a URL.
 *
 * @example Read what was refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnsafeUrlError } from "./errors.ts";
 * const error = new UnsafeUrlError({
 *   header: "Location",
 *   url: "file:///etc/passwd",
 *   from: "http://127.0.0.1:5000/v2/app/manifests/v1",
 *   rule: "scheme",
 * });
 * assert.equal(error.rule, "scheme");
 * assert.equal(
 *   error.message,
 *   'Refusing the Location "file:///etc/passwd" sent by http://127.0.0.1:5000/v2/app/manifests/v1: only http: and https: URLs are followed',
 * );
 * ```
 */
export class UnsafeUrlError extends Error {
  /** The header (or header parameter) that held the URL, e.g. `Location`, `Link`; empty for a request. */
  readonly header: string;
  /** The URL, resolved when it could be, with credentials redacted. */
  readonly url: string;
  /** The URL of the response that sent it, with credentials redacted; empty for a request. */
  readonly from: string;
  /** The rule it breaks. */
  readonly rule: UrlRule;

  /**
   * Creates the error.
   *
   * @param init The header, the URL, where it came from and the rule broken; without `header`
   * and `from`, a request to the URL was refused.
   */
  constructor(
    init: { header?: string; url: string; from?: string; rule: UrlRule },
  ) {
    const url = redactUrl(init.url);
    const from = init.from === undefined ? "" : redactUrl(init.from);
    const quoted = JSON.stringify(
      url.length > 256 ? `${url.slice(0, 256)}…` : url,
    );
    super(
      init.header === undefined
        ? `Refusing to send a request to ${quoted}: ${RULE_TEXT[init.rule]}`
        : `Refusing the ${init.header} ${quoted}${
          from ? ` sent by ${from}` : ""
        }: ${RULE_TEXT[init.rule]}`,
    );
    this.name = "UnsafeUrlError";
    this.header = init.header ?? "";
    this.url = url;
    this.from = from;
    this.rule = init.rule;
  }
}

const RULE_TEXT: Readonly<Record<UrlRule, string>> = {
  url: "it is not a URL",
  scheme: "only http: and https: URLs are followed",
  downgrade:
    "a URL from https: may not lead to plain http: on a host that is not loopback",
};

/**
 * Where a request stalled: `connect` (the connection was not made), `headers` (no response
 * headers after the request was sent), `upload` (the server stopped reading the request body),
 * `body` (no more bytes of the response body while they were being read).
 */
export type TimeoutPhase = "connect" | "headers" | "upload" | "body";

/** What each phase was waiting for, as it reads in a message. */
const TIMEOUT_PHASE_TEXT: Record<TimeoutPhase, string> = {
  connect: "connecting",
  headers: "waiting for the response headers",
  upload: "waiting for the server to read the request body",
  body: "waiting for more of the response body",
};

/**
 * A registry (or token server, or blob storage) stayed silent longer than a timeout allows.
 * Names the request (method and redacted URL), the phase that stalled and the timeout. Retries
 * treat it as a network error: the request, or the whole transfer, may be tried again.
 *
 * @example A response body that stopped arriving
 * ```ts
 * import assert from "node:assert/strict";
 * import { TimeoutError } from "./errors.ts";
 * const error = new TimeoutError({
 *   method: "GET",
 *   url: "http://127.0.0.1:5000/v2/app/manifests/v1?token=secret",
 *   phase: "body",
 *   timeout: 500,
 * });
 * assert.equal(error.phase, "body");
 * assert.equal(
 *   error.message,
 *   "GET http://127.0.0.1:5000/v2/app/manifests/v1?token=REDACTED: timed out after 0.5 s waiting for more of the response body",
 * );
 * ```
 */
export class TimeoutError extends Error {
  /** The HTTP method of the request that stalled. */
  readonly method: string;
  /** The request URL, with credentials redacted. */
  readonly url: string;
  /** Where the request stalled. */
  readonly phase: TimeoutPhase;
  /** The timeout that ran out, in milliseconds. */
  readonly timeout: number;

  /**
   * Creates the error.
   *
   * @param init The request, the phase that stalled and the timeout in milliseconds.
   */
  constructor(init: {
    method: string;
    url: string;
    phase: TimeoutPhase;
    timeout: number;
    cause?: unknown;
  }) {
    const url = redactUrl(init.url);
    super(
      `${init.method} ${url}: timed out after ${init.timeout / 1000} s ${
        TIMEOUT_PHASE_TEXT[init.phase]
      }`,
      { cause: init.cause },
    );
    this.name = "TimeoutError";
    this.method = init.method;
    this.url = url;
    this.phase = init.phase;
    this.timeout = init.timeout;
  }
}
