/**
 * Manifests: `PUT` (checked by `parseManifest` for size, JSON, media type, schema version and
 * well-formed descriptors, then that what they point to is in the repository), `GET`, `HEAD` and `DELETE` of `…/manifests/<tag or digest>`.
 *
 * @module
 */
import { digestOf } from "../oci/digest.ts";
import { TAG_REGEXP } from "../oci/reference.ts";
import type { ImageIndex, ImageManifest } from "../oci/manifest.ts";
import {
  ManifestError,
  type ParsedManifest,
  parseManifest,
} from "../oci/parse_manifest.ts";
import { readAtMost } from "../io/bytes.ts";
import { isValidDigest, type RegistryContext } from "./context.ts";
import {
  API_HEADERS,
  deletesDisabled,
  digestInvalid,
  digestMismatch,
  manifestBlobUnknown,
  manifestInvalid,
  manifestTooLarge,
  manifestUnknown,
  methodNotAllowed,
  tagInvalid,
} from "./errors.ts";

/** A request to `…/manifests/<reference>`. */
export async function serveManifest(
  context: RegistryContext,
  request: Request,
  name: string,
  reference: string,
): Promise<Response> {
  if (request.method === "PUT") {
    return await putManifest(context, request, name, reference);
  }
  if (request.method === "DELETE") {
    if (!context.allowDelete) throw deletesDisabled();
    if (!(await context.storage.deleteManifest(name, reference))) {
      throw manifestUnknown(reference);
    }
    return new Response(null, { status: 202, headers: API_HEADERS });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    throw methodNotAllowed(request.method);
  }
  const manifest = await context.storage.getManifest(name, reference);
  if (manifest === undefined) {
    if (request.method === "HEAD") {
      return new Response(null, { status: 404, headers: API_HEADERS });
    }
    throw manifestUnknown(reference);
  }
  const headers = {
    ...API_HEADERS,
    "content-type": manifest.mediaType,
    "docker-content-digest": manifest.digest,
    "content-length": String(manifest.bytes.byteLength),
  };
  return new Response(
    request.method === "HEAD"
      ? null
      : manifest.bytes as Uint8Array<ArrayBuffer>,
    { status: 200, headers },
  );
}

/** `PUT`: stores a manifest under its digest, and under the tag when it is pushed by one. */
async function putManifest(
  context: RegistryContext,
  request: Request,
  name: string,
  reference: string,
): Promise<Response> {
  const { storage, maxManifestSize } = context;
  const isDigest = reference.includes(":");
  if (isDigest && !isValidDigest(reference)) throw digestInvalid(reference);
  if (!isDigest && !TAG_REGEXP.test(reference)) throw tagInvalid(reference);
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxManifestSize) throw manifestTooLarge(maxManifestSize);
  const bytes = await readAtMost(request.body, maxManifestSize);
  if (bytes === undefined) throw manifestTooLarge(maxManifestSize);
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(bytes, request.headers.get("content-type"), {
      maxSize: maxManifestSize,
    });
  } catch (error) {
    if (error instanceof ManifestError) throw manifestInvalid(error.message);
    throw error;
  }
  const { mediaType, manifest } = parsed;
  const digest = digestOf(bytes);
  if (isDigest && reference !== digest) {
    throw digestMismatch(
      `the manifest's digest is ${digest}, not ${reference}`,
    );
  }
  // What it points to must be in the repository: blobs for a manifest, manifests for an index.
  if (parsed.isIndex) {
    for (const entry of (manifest as ImageIndex).manifests) {
      if (!isValidDigest(entry.digest)) {
        throw manifestInvalid("an index entry has an invalid digest");
      }
      if ((await storage.getManifest(name, entry.digest)) === undefined) {
        throw manifestBlobUnknown("manifest", entry.digest);
      }
    }
  } else {
    const { config, layers } = manifest as ImageManifest;
    for (const blob of [config, ...layers]) {
      if (!isValidDigest(blob.digest)) {
        throw manifestInvalid("a descriptor has an invalid digest");
      }
      if ((await storage.blobSize(name, blob.digest)) === undefined) {
        throw manifestBlobUnknown("blob", blob.digest);
      }
    }
  }
  await storage.putManifest(
    name,
    { bytes, mediaType, digest },
    isDigest ? undefined : reference,
  );
  const headers: Record<string, string> = {
    ...API_HEADERS,
    location: context.location(request, `/v2/${name}/manifests/${digest}`),
    "docker-content-digest": digest,
    "content-length": "0",
  };
  if (manifest.subject !== undefined) {
    headers["oci-subject"] = manifest.subject.digest;
  }
  return new Response(null, { status: 201, headers });
}
