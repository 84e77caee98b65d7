/**
 * Errors that carry the failed request, and the status check every registry call ends with.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";

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
  /^(?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|signature|sig|token|access_token|refresh_token|password|se|st|sp|skoid|sktid|skt|ske|sks|skv)$/i;

/**
 * Removes credentials from a URL so that it can appear in a message or a log: userinfo and the
 * values of query parameters that hold signatures or tokens.
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
    return String(url).replace(/\/\/[^/@]*@/, "//REDACTED@");
  }
  let text = `${parsed.protocol}//`;
  if (parsed.username || parsed.password) text += "REDACTED@";
  text += `${parsed.host}${parsed.pathname}`;
  if (parsed.search) {
    const parts = parsed.search.slice(1).split("&").map((part) => {
      const eq = part.indexOf("=");
      const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      return eq >= 0 && SECRET_QUERY_REGEXP.test(key)
        ? `${part.slice(0, eq)}=REDACTED`
        : part;
    });
    text += `?${parts.join("&")}`;
  }
  return text;
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
    /("(?:access_token|refresh_token|token|password|secret|authorization)"\s*:\s*")[^"]*/gi,
    "$1REDACTED",
  ],
  [
    /([?&](?:access_token|refresh_token|token|password)=)[^&\s"]+/gi,
    "$1REDACTED",
  ],
];

/**
 * Removes what looks like a credential from text a registry sent back (an error body may repeat
 * the `Authorization` header, a token, or a password field): `Basic …`/`Bearer …` values, JWTs,
 * and `token`/`password`/`authorization` fields.
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
 * ```
 */
export function redactSecrets(text: string): string {
  let redacted = text;
  for (const [regexp, replacement] of SECRET_TEXT_REGEXPS) {
    redacted = redacted.replace(regexp, replacement);
  }
  return redacted;
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
    super(text, { cause: init.cause });
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
