/**
 * Redirects followed by us rather than by `fetch`, so that the rules are ours and tested: HEAD
 * stays HEAD, and credentials never follow a redirect to another origin.
 *
 * @module
 */
import { replayRequest, type Transport } from "./request_body.ts";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Headers that carry secrets and are dropped when a redirect leaves the origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * Wraps a transport that returns redirects as they are (such as `httpTransport`) so that they
 * are followed: GET and HEAD keep their method on every redirect (storage backends sign the
 * method into the URL), 307/308 replay other methods with their body, 301/302/303 turn them into
 * a GET without body. `Authorization`, `Cookie` and `Proxy-Authorization` are dropped as soon as
 * the target's origin differs from the original request's.
 *
 * @param next The transport that sends one request.
 * @param options `maxRedirects` (default 10).
 * @returns The redirect-following transport; the final response's `url` is where it came from.
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
    const origin = new URL(request.url).origin;
    let current = request;
    for (let hops = 0;; hops++) {
      const response = await next(current);
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
      const target = new URL(location, current.url);
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
