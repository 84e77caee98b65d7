/**
 * Blobs: `GET` (whole, or a byte `Range`), `HEAD` and `DELETE` of `…/blobs/<digest>`, for blobs
 * linked to the repository (pushed or mounted there).
 *
 * @module
 */
import { isValidDigest, type RegistryContext } from "./context.ts";
import { blobDescriptor } from "./repositories.ts";
import {
  API_HEADERS,
  blobUnknown,
  deletesDisabled,
  digestInvalid,
  methodNotAllowed,
} from "./errors.ts";

/** A request to `…/blobs/<digest>`. */
export async function serveBlob(
  context: RegistryContext,
  request: Request,
  name: string,
  digest: string,
): Promise<Response> {
  if (!isValidDigest(digest)) throw digestInvalid(digest);
  const repository = context.repositories.get(name);
  if (request.method === "DELETE") {
    if (!context.allowDelete) throw deletesDisabled();
    const size = await repository.blobSize(digest);
    if (
      size === undefined ||
      !(await repository.delete(blobDescriptor(digest, size)))
    ) throw blobUnknown(digest);
    return new Response(null, { status: 202, headers: API_HEADERS });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    throw methodNotAllowed(request.method);
  }
  const size = await repository.blobSize(digest);
  if (size === undefined) {
    if (request.method === "HEAD") {
      return new Response(null, { status: 404, headers: API_HEADERS });
    }
    throw blobUnknown(digest);
  }
  const headers: Record<string, string> = {
    ...API_HEADERS,
    "docker-content-digest": digest,
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
  };
  if (request.method === "GET") {
    const redirect = context.redirectBlob?.(name, digest);
    if (redirect !== undefined) {
      return new Response(null, {
        status: 307,
        headers: { ...API_HEADERS, location: redirect },
      });
    }
  }
  const rangeHeader = request.headers.get("range");
  if (rangeHeader !== null && request.method === "GET") {
    const match = /^bytes=(\d*)-(\d*)$/.exec(rangeHeader.trim());
    let start = match?.[1] ? Number(match[1]) : NaN;
    let end = match?.[2] ? Number(match[2]) : size - 1;
    if (match && match[1] === "" && match[2] !== "") {
      start = Math.max(0, size - Number(match[2]));
      end = size - 1;
    }
    if (!match || Number.isNaN(start) || start > end || start >= size) {
      return new Response(null, {
        status: 416,
        headers: { ...API_HEADERS, "content-range": `bytes */${size}` },
      });
    }
    end = Math.min(end, size - 1);
    return new Response(
      await repository.readBlob(digest, { range: { start, end } }),
      {
        status: 206,
        headers: {
          ...headers,
          "content-range": `bytes ${start}-${end}/${size}`,
          "content-length": String(end - start + 1),
        },
      },
    );
  }
  headers["content-length"] = String(size);
  if (request.method === "HEAD") {
    return new Response(null, { status: 200, headers });
  }
  return new Response(await repository.readBlob(digest), {
    status: 200,
    headers,
  });
}
