/**
 * The catalog: `GET /v2/_catalog`, the names of the repositories that hold manifests, sorted,
 * paged with `n` and `last`, and a `Link` to the next page when there is one (as distribution
 * serves it; podman's `search` reads it).
 *
 * @module
 */
import type { RegistryContext } from "./context.ts";
import {
  API_HEADERS,
  methodNotAllowed,
  paginationNumberInvalid,
} from "./errors.ts";

/** A request to `/v2/_catalog`. */
export async function serveCatalog(
  context: RegistryContext,
  request: Request,
  url: URL,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    throw methodNotAllowed(request.method);
  }
  const last = url.searchParams.get("last");
  const nText = url.searchParams.get("n");
  const n = nText === null ? undefined : Number(nText);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw paginationNumberInvalid(nText!);
  }
  const all = await context.repositories.list();
  let repositories = last === null ? all : all.filter((name) => name > last);
  const headers: Record<string, string> = { ...API_HEADERS };
  if (n !== undefined && repositories.length > n) {
    repositories = repositories.slice(0, n);
    if (n > 0) {
      headers.link = `</v2/_catalog?n=${n}&last=${
        encodeURIComponent(repositories[repositories.length - 1])
      }>; rel="next"`;
    }
  }
  return Response.json({ repositories }, { headers });
}
