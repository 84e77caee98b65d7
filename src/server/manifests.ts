/**
 * Manifests: `PUT` (checked by `parseManifest` for size, JSON, media type, schema version and
 * well-formed descriptors, then that what they point to is in the repository), `GET`, `HEAD` and `DELETE` of `…/manifests/<tag or digest>`.
 *
 * @module
 */
import { digestOf } from "../oci/digest.ts";
import { TAG_REGEXP } from "../oci/reference.ts";
import type { Descriptor, ImageIndex, ImageManifest } from "../oci/manifest.ts";
import {
  ManifestError,
  type ParsedManifest,
  parseManifest,
} from "../oci/parse_manifest.ts";
import { readAtMost } from "../io/bytes.ts";
import { bytesSource } from "../transport/request_body.ts";
import { fetchBytes } from "../store/store.ts";
import { isValidDigest, type RegistryContext } from "./context.ts";
import type { Repository } from "./repositories.ts";
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
  const repository = context.repositories.get(name);
  if (request.method === "DELETE") {
    if (!context.allowDelete) throw deletesDisabled();
    // A tag is untagged (the manifest stays, by digest); a digest goes with its tags.
    const descriptor = reference.includes(":")
      ? await resolved(repository, reference)
      : undefined;
    const deleted = descriptor === undefined
      ? await repository.untag(reference)
      : await repository.delete(descriptor);
    if (!deleted) throw manifestUnknown(reference);
    return new Response(null, { status: 202, headers: API_HEADERS });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    throw methodNotAllowed(request.method);
  }
  const manifest = await storedManifest(context, repository, reference);
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
  const { maxManifestSize } = context;
  const repository = context.repositories.get(name);
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
      if ((await resolved(repository, entry.digest)) === undefined) {
        throw manifestBlobUnknown("manifest", entry.digest);
      }
    }
  } else {
    const { config, layers } = manifest as ImageManifest;
    for (const blob of [config, ...layers]) {
      if (!isValidDigest(blob.digest)) {
        throw manifestInvalid("a descriptor has an invalid digest");
      }
      if ((await repository.blobSize(blob.digest)) === undefined) {
        throw manifestBlobUnknown("blob", blob.digest);
      }
    }
  }
  await repository.push(
    { mediaType, digest, size: bytes.byteLength },
    bytesSource(bytes),
    { tag: isDigest ? undefined : reference },
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

/** The descriptor of a manifest of the repository by tag or digest, or undefined. */
async function resolved(
  repository: Repository,
  reference: string,
): Promise<Descriptor | undefined> {
  try {
    return await repository.resolve(reference);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** A stored manifest: its exact bytes, the media type it was pushed with, and its digest. */
async function storedManifest(
  context: RegistryContext,
  repository: Repository,
  reference: string,
): Promise<
  { bytes: Uint8Array; mediaType: string; digest: string } | undefined
> {
  for (let attempt = 1;; attempt++) {
    const descriptor = await resolved(repository, reference);
    if (descriptor === undefined) return undefined;
    try {
      const bytes = await fetchBytes(repository, descriptor, {
        maxSize: Math.max(context.maxManifestSize, descriptor.size),
      });
      return {
        bytes,
        mediaType: descriptor.mediaType,
        digest: descriptor.digest,
      };
    } catch (error) {
      // The tag moved (or the manifest went) between the two reads: look again.
      if (!(error instanceof Deno.errors.NotFound) || attempt >= 3) throw error;
    }
  }
}
