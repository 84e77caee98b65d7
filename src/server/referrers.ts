/**
 * The referrers API: `GET …/referrers/<digest>`, an index of the repository's manifests whose
 * `subject` is that digest, filtered by `artifactType` when asked (and saying so in
 * `OCI-Filters-Applied`). An unknown subject has an empty index, not a 404.
 *
 * @module
 */
import { OCI_INDEX_MEDIA_TYPE } from "../oci/media_types.ts";
import { isValidDigest, type RegistryContext } from "./context.ts";
import { API_HEADERS, digestInvalid, methodNotAllowed } from "./errors.ts";

/** A request to `…/referrers/<digest>`. */
export async function serveReferrers(
  context: RegistryContext,
  request: Request,
  url: URL,
  name: string,
  digest: string,
): Promise<Response> {
  if (request.method !== "GET") throw methodNotAllowed(request.method);
  if (!isValidDigest(digest)) throw digestInvalid(digest);
  const wanted = url.searchParams.get("artifactType");
  const manifests = await context.repositories.get(name).referrers(digest, {
    artifactType: wanted ?? undefined,
  });
  const headers: Record<string, string> = {
    ...API_HEADERS,
    "content-type": OCI_INDEX_MEDIA_TYPE,
  };
  if (wanted !== null) headers["oci-filters-applied"] = "artifactType";
  return new Response(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests,
    }),
    { status: 200, headers },
  );
}
