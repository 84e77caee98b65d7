/**
 * Network failures that say what broke: a {@linkcode NetworkError} names the request (method and
 * redacted URL) and the cause (DNS name not found, connection refused, TLS certificate refused,
 * timed out, connection reset or closed), read from what `fetch` (a `TypeError` whose cause
 * holds Deno's text) or `node:http` (an error with a `code` such as `ENOTFOUND`) threw.
 * {@linkcode withNetworkErrors} translates the failures of a transport, its responses' bodies
 * included, into these.
 *
 * @module
 */
import {
  redactError,
  redactSecrets,
  redactUrl,
  TimeoutError,
} from "./errors.ts";
import type { Transport } from "./request_body.ts";
import { pendingView } from "../io/bytes.ts";

/**
 * What broke: `dns` (the host name could not be resolved), `refused` (nothing listens there),
 * `tls` (the server's certificate was refused), `timeout` (the system gave up connecting),
 * `unreachable` (no route to the host), `reset` (the connection was reset or closed before the
 * answer was complete), `blocked` (the runtime refuses to send to that port, as `fetch` does
 * for ports such as 1 or 25), `other` (a network failure of another kind).
 */
export type NetworkErrorKind =
  | "dns"
  | "refused"
  | "tls"
  | "timeout"
  | "unreachable"
  | "reset"
  | "blocked"
  | "other";

/** Each kind as it reads in a message. */
const KIND_TEXT: Readonly<Record<NetworkErrorKind, string>> = {
  dns: "DNS name not found",
  refused: "connection refused",
  tls: "TLS certificate error",
  timeout: "timed out connecting",
  unreachable: "host unreachable",
  reset: "connection reset or closed",
  blocked: "port blocked",
  other: "network error",
};

/**
 * A request got no complete answer because of the network. Names the method, the URL (with
 * credentials redacted), what broke (`kind`) and the details the runtime gave (`detail`, e.g.
 * `invalid peer certificate: UnknownIssuer`). It is a `TypeError`, as `fetch`'s own failures are.
 * `retryable` is false for what sending again cannot fix: a name that does not resolve, a
 * certificate that is not trusted, expired or for another host, a blocked port.
 *
 * @example A certificate nobody trusts
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetworkError } from "./network_errors.ts";
 * const error = new NetworkError({
 *   method: "GET",
 *   url: "https://registry.example/v2/?token=secret",
 *   kind: "tls",
 *   detail: "invalid peer certificate: UnknownIssuer",
 * });
 * assert.equal(error.retryable, false);
 * assert.equal(
 *   error.message,
 *   "GET https://registry.example/v2/?token=REDACTED: TLS certificate error: invalid peer certificate: UnknownIssuer (the certificate's issuer is not trusted)",
 * );
 * ```
 */
export class NetworkError extends TypeError {
  /** The HTTP method of the failed request. */
  readonly method: string;
  /** The request URL, with credentials redacted. */
  readonly url: string;
  /** What broke. */
  readonly kind: NetworkErrorKind;
  /** What the runtime said, without the URL it repeats, credentials redacted. */
  readonly detail: string;
  /** Whether sending the request again may succeed. */
  readonly retryable: boolean;

  /**
   * Creates the error.
   *
   * @param init The request, what broke, the runtime's words; `retryable` defaults to false
   * for `dns`, `tls` and `blocked`, true otherwise.
   */
  constructor(init: {
    method: string;
    url: string;
    kind: NetworkErrorKind;
    detail?: string;
    retryable?: boolean;
    cause?: unknown;
  }) {
    const url = redactUrl(init.url);
    const detail = redactSecrets(init.detail ?? "");
    const explained = init.kind === "tls" ? explainCertificate(detail) : "";
    super(
      `${init.method} ${url}: ${KIND_TEXT[init.kind]}${
        detail ? `: ${detail}` : ""
      }${explained ? ` (${explained})` : ""}`,
      // The runtime's own words quote the URL as sent, signed query included.
      { cause: redactError(init.cause) },
    );
    this.name = "NetworkError";
    this.method = init.method;
    this.url = url;
    this.kind = init.kind;
    this.detail = detail;
    this.retryable = init.retryable ??
      !["dns", "tls", "blocked"].includes(init.kind);
  }
}

/** Plain words for the certificate problems rustls and OpenSSL report by name. */
const CERTIFICATE_WORDS: readonly [RegExp, string][] = [
  [
    /UnknownIssuer|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|unable to verify the first certificate|unable to get local issuer/i,
    "the certificate's issuer is not trusted",
  ],
  [
    /SELF_SIGNED|self[- ]signed/i,
    "the certificate is self-signed and not trusted",
  ],
  [/\bExpired\b|CERT_HAS_EXPIRED|has expired/i, "the certificate has expired"],
  [
    /NotValidYet|CERT_NOT_YET_VALID|not yet valid/i,
    "the certificate is not valid yet",
  ],
  [
    /not valid for name|NotValidForName|ALTNAME_INVALID|does not match certificate/i,
    "the certificate is for another host name",
  ],
  [/Revoked|CERT_REVOKED/i, "the certificate was revoked"],
];

function explainCertificate(detail: string): string {
  return CERTIFICATE_WORDS.find(([regexp]) => regexp.test(detail))?.[1] ?? "";
}

/** `node:http(s)` error codes, by what broke. */
const NODE_CODES: Readonly<Record<string, NetworkErrorKind>> = {
  ENOTFOUND: "dns",
  EAI_AGAIN: "dns",
  EAI_FAIL: "dns",
  EAI_NONAME: "dns",
  ECONNREFUSED: "refused",
  ECONNRESET: "reset",
  ECONNABORTED: "reset",
  EPIPE: "reset",
  ERR_STREAM_PREMATURE_CLOSE: "reset",
  ETIMEDOUT: "timeout",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  EHOSTDOWN: "unreachable",
  ENETDOWN: "unreachable",
  ERR_TLS_CERT_ALTNAME_INVALID: "tls",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "tls",
  UNABLE_TO_GET_ISSUER_CERT: "tls",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "tls",
  DEPTH_ZERO_SELF_SIGNED_CERT: "tls",
  SELF_SIGNED_CERT_IN_CHAIN: "tls",
  CERT_UNTRUSTED: "tls",
  CERT_REJECTED: "tls",
  HOSTNAME_MISMATCH: "tls",
};

/** Deno's words (hyper, rustls, the OS), by what broke; the first match wins. */
const DENO_TEXTS: readonly [RegExp, NetworkErrorKind][] = [
  [/requests to port \d+ are blocked/i, "blocked"],
  [/dns error|failed to lookup address|name or service not known/i, "dns"],
  [/invalid peer certificate|certificate/i, "tls"],
  [/connection refused/i, "refused"],
  [/network is unreachable|no route to host|host is down/i, "unreachable"],
  [/timed out/i, "timeout"],
  [
    /connection reset|connection closed|broken pipe|unexpected eof|error reading a body|connection aborted|incomplete message|socket hang up/i,
    "reset",
  ],
];

/** What `fetch` says when a request did not go through, whatever the cause. */
const FETCH_FAILURE_REGEXP = /fetch failed|error sending request|network/i;

/** A DNS failure that a later try may get past: the resolver could not answer just now. */
const TEMPORARY_DNS_REGEXP = /temporary failure|EAI_AGAIN|try again/i;

/** Deno's error classes for connection failures, by what broke. */
function kindOfDenoError(error: unknown): NetworkErrorKind | undefined {
  if (error instanceof Deno.errors.ConnectionRefused) return "refused";
  if (error instanceof Deno.errors.TimedOut) return "timeout";
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof
  ) return "reset";
  return undefined;
}

/** The errors of a cause chain, outermost first (at most 8). */
function causeChain(error: unknown): Error[] {
  const chain: Error[] = [];
  for (
    let current = error;
    current instanceof Error && chain.length < 8;
    current = current.cause
  ) chain.push(current);
  return chain;
}

/**
 * The runtime's words without what only repeats the request: hyper's `error sending request for
 * url (…)` and `client error (Connect)`, node's `connect ECONNREFUSED host:port` kept as is.
 */
function detailOf(message: string): string {
  return message
    .replace(
      /^error sending request (?:for url \([^)]*\)|from \S+ for \S+(?: \([^)]*\))?):?\s*/i,
      "",
    )
    .replace(/^client error \([^)]*\):\s*/i, "")
    .replace(/^fetch failed:\s*/i, "")
    .replace(/^Cannot send \S+ \S+:\s*/, "")
    .trim();
}

/** What a thrown value says broke, and its most telling words. */
function classify(
  error: unknown,
): { kind: NetworkErrorKind; detail: string } | undefined {
  const chain = causeChain(error);
  for (const link of chain) {
    const code = (link as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    const kind = NODE_CODES[code] ??
      (/^CERT_|^ERR_TLS_|^ERR_SSL_/.test(code) ? "tls" : undefined);
    if (kind === undefined) continue;
    const detail = detailOf(link.message);
    return {
      kind,
      detail: detail.includes(code) ? detail : `${detail} (${code})`,
    };
  }
  // The innermost message is the most precise (fetch's own is only "fetch failed").
  for (const link of [...chain].reverse()) {
    const kind = kindOfDenoError(link) ??
      DENO_TEXTS.find(([regexp]) => regexp.test(link.message))?.[1];
    if (kind !== undefined) return { kind, detail: detailOf(link.message) };
  }
  // Other TypeErrors are left alone unless they come from fetch: a bug is not a network error.
  const innermost = chain[chain.length - 1];
  if (error instanceof TypeError && FETCH_FAILURE_REGEXP.test(error.message)) {
    return { kind: "other", detail: detailOf(innermost.message) };
  }
  return undefined;
}

/**
 * Reads what a transport threw for a request into a {@linkcode NetworkError}: `fetch`'s
 * `TypeError` and its cause chain, `node:http`'s coded errors, Deno's connection errors. A
 * `NetworkError` or `TimeoutError` is returned as it is; anything else that is not a network
 * failure (an abort, a refused permission, a `RangeError`) gives undefined.
 *
 * @param request The request that failed.
 * @param error What was thrown.
 * @returns The network error, or undefined.
 *
 * @example What `fetch` throws for a host that does not exist
 * ```ts
 * import assert from "node:assert/strict";
 * import { type NetworkError, networkErrorOf } from "./network_errors.ts";
 * const thrown = new TypeError("fetch failed", {
 *   cause: new Error("error sending request for url (https://nonexistent.invalid/v2/): client error (Connect): dns error: failed to lookup address information: Name or service not known"),
 * });
 * const error = networkErrorOf(new Request("https://nonexistent.invalid/v2/"), thrown) as NetworkError;
 * assert.equal(error.kind, "dns");
 * assert.equal(error.retryable, false);
 * assert.equal(
 *   error.message,
 *   "GET https://nonexistent.invalid/v2/: DNS name not found: dns error: failed to lookup address information: Name or service not known",
 * );
 * ```
 */
export function networkErrorOf(
  request: Request,
  error: unknown,
): NetworkError | TimeoutError | undefined {
  if (error instanceof NetworkError || error instanceof TimeoutError) {
    return error;
  }
  if (error instanceof DOMException && error.name === "AbortError") {
    return undefined;
  }
  const found = classify(error);
  if (found === undefined) return undefined;
  return new NetworkError({
    method: request.method,
    url: request.url,
    kind: found.kind,
    detail: found.detail,
    retryable: found.kind === "dns"
      ? TEMPORARY_DNS_REGEXP.test(found.detail)
      : undefined,
    cause: error,
  });
}

/** Responses whose body already translates its errors, so that two layers do not stack. */
const translated = new WeakSet<Response>();

/**
 * Wraps a transport so that its network failures are {@linkcode NetworkError}s naming the
 * request and the cause (see {@linkcode networkErrorOf}), and so are the failures of reading a
 * response's body (a connection cut in the middle of a blob). Aborts, timeouts and other errors
 * pass through unchanged. The opener puts it right above the bottom transport, so that the
 * retry layer sees what broke: a name that does not resolve or a refused certificate is not
 * retried.
 *
 * @param next The transport.
 * @returns The transport whose failures say what broke.
 *
 * @example A port where nothing listens
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetworkError, withNetworkErrors } from "./network_errors.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const url = `http://127.0.0.1:${listener.addr.port}/v2/`;
 * listener.close();
 * const transport = withNetworkErrors((request) => fetch(request));
 * const error = await transport(new Request(url)).catch((e) => e);
 * assert.ok(error instanceof NetworkError);
 * assert.equal(error.kind, "refused");
 * assert.ok(error.message.startsWith(`GET ${url}: connection refused`));
 * ```
 */
export function withNetworkErrors(next: Transport): Transport {
  return async function translating(request: Request): Promise<Response> {
    let response: Response;
    try {
      response = await next(request);
    } catch (error) {
      if (request.signal.aborted) throw error;
      throw networkErrorOf(request, error) ?? error;
    }
    if (response.body === null || translated.has(response)) return response;
    const copy = withBody(response, translateBody(response.body, request));
    translated.add(copy);
    return copy;
  };
}

/** The same response with another body (status, headers and URL kept). */
function withBody(
  response: Response,
  body: ReadableStream<Uint8Array>,
): Response {
  const copy = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  if (response.url) {
    Object.defineProperty(copy, "url", {
      value: response.url,
      configurable: true,
    });
  }
  return copy;
}

/** Bytes asked of the body below when the reader brings no buffer of its own. */
const DEFAULT_READ_SIZE = 64 * 1024;

/**
 * A body whose read failures are translated by {@linkcode networkErrorOf}. A byte stream stays
 * a byte stream: BYOB reads pass through without a copy.
 */
function translateBody(
  body: ReadableStream<Uint8Array>,
  request: Request,
): ReadableStream<Uint8Array> {
  const translate = (error: unknown) =>
    request.signal.aborted ? error : networkErrorOf(request, error) ?? error;
  let byob: ReadableStreamBYOBReader;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    const reader = body.getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const result = await reader.read().catch((error) => {
          throw translate(error);
        });
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }
  return new ReadableStream({
    type: "bytes",
    async pull(controller: ReadableByteStreamController) {
      const pending = controller.byobRequest;
      const target = pendingView(controller, DEFAULT_READ_SIZE);
      const result = await byob.read(target).catch((error) => {
        throw translate(error);
      });
      if (result.done) {
        controller.close();
        // After close, a pending BYOB read is answered with an empty view of its buffer.
        if (pending && result.value) pending.respondWithNewView(result.value);
      } else if (pending) pending.respondWithNewView(result.value);
      else controller.enqueue(result.value);
    },
    cancel: (reason) => byob.cancel(reason),
  });
}
