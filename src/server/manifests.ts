/**
 * Manifests: `PUT` (checked for size, JSON, media type, schema version and that what they point
 * to is in the repository), `GET`, `HEAD` and `DELETE` of `…/manifests/<tag or digest>`.
 *
 * @module
 */
import { digestOf } from "../reference/digest.ts";
import { TAG_REGEXP } from "../reference/reference.ts";
import { isIndexMediaType, isManifestMediaType } from "../image/media_types.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../image/manifest.ts";
import { readAtMost } from "../bytes.ts";
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
  let document: (ImageManifest | ImageIndex) & { schemaVersion?: number };
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw manifestInvalid("the manifest is not valid JSON");
  }
  if (
    typeof document !== "object" || document === null ||
    Array.isArray(document)
  ) {
    throw manifestInvalid("the manifest is not a JSON object");
  }
  const contentType =
    request.headers.get("content-type")?.split(";")[0].trim() || undefined;
  const mediaType = contentType ?? document.mediaType;
  if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) {
    throw manifestInvalid(
      `unsupported manifest media type "${mediaType ?? ""}"`,
    );
  }
  if (document.mediaType !== undefined && document.mediaType !== mediaType) {
    throw manifestInvalid(
      `the mediaType "${document.mediaType}" does not match the Content-Type "${mediaType}"`,
    );
  }
  if (document.schemaVersion !== 2) {
    throw manifestInvalid("schemaVersion must be 2");
  }
  const digest = digestOf(bytes);
  if (isDigest && reference !== digest) {
    throw digestMismatch(
      `the manifest's digest is ${digest}, not ${reference}`,
    );
  }
  if (isManifestMediaType(mediaType)) {
    const manifest = document as ImageManifest;
    if (
      typeof manifest.config?.digest !== "string" ||
      !Array.isArray(manifest.layers)
    ) {
      throw manifestInvalid("a manifest needs a config and a layers array");
    }
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (typeof blob?.digest !== "string" || !isValidDigest(blob.digest)) {
        throw manifestInvalid("a descriptor has an invalid digest");
      }
      if ((await storage.blobSize(name, blob.digest)) === undefined) {
        throw manifestBlobUnknown("blob", blob.digest);
      }
    }
  } else {
    const index = document as ImageIndex;
    if (!Array.isArray(index.manifests)) {
      throw manifestInvalid("an index needs a manifests array");
    }
    for (const entry of index.manifests) {
      if (typeof entry?.digest !== "string" || !isValidDigest(entry.digest)) {
        throw manifestInvalid("an index entry has an invalid digest");
      }
      if ((await storage.getManifest(name, entry.digest)) === undefined) {
        throw manifestBlobUnknown("manifest", entry.digest);
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
  const subject = (document as { subject?: Descriptor }).subject;
  if (typeof subject?.digest === "string") {
    headers["oci-subject"] = subject.digest;
  }
  return new Response(null, { status: 201, headers });
}
