/**
 * Redirects followed by us rather than by `fetch`, so that the rules are ours and tested: HEAD
 * stays HEAD, credentials never follow a redirect to another origin, and no URL a registry hands
 * us leads anywhere but `http:`/`https:` (`fetch` in Deno reads `file:` URLs and answers
 * `data:` ones).
 *
 * @module
 */
import { isLoopbackHost } from "../oci/reference.ts";
import { redactError, UnsafeUrlError } from "./errors.ts";
import { replayRequest, type Transport } from "./request_body.ts";

/** The only schemes a request may go to. */
const HTTP_PROTOCOLS = new Set(["http:", "https:"]);

/** Options of {@linkcode resolveRegistryUrl}. */
export interface ResolveRegistryUrlOptions {
  /** The URL of the response that sent the URL: relative URLs resolve against it. */
  readonly from: string | URL;
  /**
   * What a relative URL resolves against, when not `from`.
   * @default {from}
   */
  readonly base?: string | URL;
  /** The header that held it, for the error: `Location`, `Link`, `WWW-Authenticate realm`. */
  readonly header: string;
  /**
   * Resolve a relative URL against `from`; when false, it must be absolute.
   * @default {true}
   */
  readonly relative?: boolean;
}

/**
 * The one check of every URL a registry hands us before we go there: redirects, token realms,
 * upload `Location`s, `Link`s to the next page. It is parsed as `fetch` would (so whitespace,
 * control characters, uppercase schemes and `//host` forms end up as what they really are), and
 * must then be `http:` or `https:`, and not lead from `https:` down to plain `http:` unless the
 * new host is loopback.
 *
 * @param value The URL as the registry sent it.
 * @param options Where it came from and in which header.
 * @returns The resolved URL.
 * @throws {UnsafeUrlError} When it is not a URL or breaks a rule.
 *
 * @example A local file is refused, a relative path resolves
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveRegistryUrl } from "./redirects.ts";
 * import { UnsafeUrlError } from "./errors.ts";
 * const from = "https://registry.example/v2/app/tags/list";
 * assert.equal(resolveRegistryUrl("/v2/app/tags/list?last=b", { from, header: "Link" }).href,
 *   "https://registry.example/v2/app/tags/list?last=b");
 * assert.throws(() => resolveRegistryUrl(" FILE:///etc/passwd", { from, header: "Location" }), UnsafeUrlError);
 * assert.throws(() => resolveRegistryUrl("http://storage.example/b", { from, header: "Location" }), /plain http:/);
 * ```
 */
export function resolveRegistryUrl(
  value: string,
  options: ResolveRegistryUrlOptions,
): URL {
  const { from, header } = options;
  const refuse = (url: string, rule: "url" | "scheme" | "downgrade") =>
    new UnsafeUrlError({ header, url, from: String(from), rule });
  let url: URL;
  try {
    url = options.relative === false
      ? new URL(value)
      : new URL(value, options.base ?? from);
  } catch {
    throw refuse(value, "url");
  }
  if (!HTTP_PROTOCOLS.has(url.protocol)) throw refuse(url.href, "scheme");
  if (
    url.protocol === "http:" && new URL(from).protocol === "https:" &&
    !isLoopbackHost(url.host)
  ) {
    throw refuse(url.href, "downgrade");
  }
  return url;
}

/** Refuses a request to anything but `http:`/`https:` before it reaches `fetch`. */
function checkRequestUrl(request: Request): void {
  if (!HTTP_PROTOCOLS.has(new URL(request.url).protocol)) {
    throw new UnsafeUrlError({ url: request.url, rule: "scheme" });
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Headers that carry secrets and are dropped when a redirect leaves the origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * Wraps a transport that returns redirects as they are (such as `httpTransport`) so that they
 * are followed: GET and HEAD keep their method on every redirect (storage backends sign the
 * method into the URL), 307/308 replay other methods with their body, 301/302/303 turn them into
 * a GET without body. `Authorization`, `Cookie` and `Proxy-Authorization` are dropped as soon as
 * the target's origin (scheme, host and port) differs from the original request's. Every
 * `Location` goes through {@linkcode resolveRegistryUrl}, and a request to anything but
 * `http:`/`https:` is refused before it is sent. Errors from below come up with credentials
 * redacted from their messages (`fetch` quotes the URL it failed on, signature and all).
 *
 * @param next The transport that sends one request.
 * @param options `maxRedirects` (default 10).
 * @returns The redirect-following transport; the final response's `url` is where it came from.
 * It rejects with an {@linkcode UnsafeUrlError} on a `Location` that breaks a rule.
 *
 * @example Follow a redirect to blob storage
 * ```ts
 * import assert from "node:assert/strict";
 * import { withRedirects } from "./redirects.ts";
 * const seen: (string | null)[] = [];
 * const transport = withRedirects((request: Request) => {
 *   seen.push(request.headers.get("authorization"));
 *   return Promise.resolve(request.url.startsWith("http://registry")
 *     ? new Response(null, { status: 307, headers: { location: "http://storage/blob" } })
 *     : new Response("bytes"));
 * });
 * const response = await transport(new Request("http://registry/v2/a/blobs/x", { headers: { authorization: "Bearer t" } }));
 * assert.equal(await response.text(), "bytes");
 * assert.deepEqual(seen, ["Bearer t", null]);
 * ```
 */
export function withRedirects(
  next: Transport,
  options: { maxRedirects?: number } = {},
): Transport {
  const maxRedirects = options.maxRedirects ?? 10;
  return async function redirecting(request: Request): Promise<Response> {
    checkRequestUrl(request);
    const origin = new URL(request.url).origin;
    let current = request;
    for (let hops = 0;; hops++) {
      const response = await next(current).catch((error) => {
        throw redactError(error);
      });
      const location = response.headers.get("location");
      if (!REDIRECT_STATUSES.has(response.status) || location === null) {
        return withUrl(response, current.url);
      }
      await response.body?.cancel();
      if (hops >= maxRedirects) {
        throw new TypeError(
          `Cannot follow redirects of ${request.method} ${origin}${
            new URL(request.url).pathname
          }: more than ${maxRedirects}`,
        );
      }
      const target = resolveRegistryUrl(location, {
        from: current.url,
        header: "Location",
      });
      const headers = new Headers(current.headers);
      if (target.origin !== origin) {
        for (const name of CREDENTIAL_HEADERS) headers.delete(name);
      }
      const keepMethod = response.status === 307 ||
        response.status === 308 || current.method === "GET" ||
        current.method === "HEAD";
      if (!keepMethod) {
        headers.delete("content-type");
        headers.delete("content-length");
      }
      current = keepMethod
        ? replayRequest(current, { url: target, headers })
        : replayRequest(current, {
          url: target,
          method: "GET",
          headers,
          body: null,
        });
    }
  };
}

/** Gives a response the URL it was fetched from, when the transport did not set one. */
function withUrl(response: Response, url: string): Response {
  if (response.url === "") {
    Object.defineProperty(response, "url", { value: url });
  }
  return response;
}
