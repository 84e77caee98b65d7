/**
 * Tag lists: `GET …/tags/list`, sorted, paged with `n` and `last`, and a `Link` to the next
 * page when there is one.
 *
 * @module
 */
import type { RegistryContext } from "./context.ts";
import {
  API_HEADERS,
  methodNotAllowed,
  nameUnknown,
  paginationNumberInvalid,
} from "./errors.ts";

/** A request to `…/tags/list`. */
export async function serveTags(
  context: RegistryContext,
  request: Request,
  url: URL,
  name: string,
): Promise<Response> {
  if (request.method !== "GET") throw methodNotAllowed(request.method);
  const last = url.searchParams.get("last");
  const nText = url.searchParams.get("n");
  const n = nText === null ? undefined : Number(nText);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw paginationNumberInvalid(nText!);
  }
  let listed: string[];
  try {
    listed = await context.repositories.get(name).listTags();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw nameUnknown(name);
    throw error;
  }
  const all = [...new Set(listed)].sort();

  let tags = last === null ? all : all.filter((tag) => tag > last);
  const headers: Record<string, string> = { ...API_HEADERS };
  if (n !== undefined && tags.length > n) {
    tags = tags.slice(0, n);
    if (n > 0) {
      headers.link = `</v2/${name}/tags/list?n=${n}&last=${
        encodeURIComponent(tags[tags.length - 1])
      }>; rel="next"`;
    }
  }
  return Response.json({ name, tags }, { headers });
}
