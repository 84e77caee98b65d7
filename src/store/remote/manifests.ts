/**
 * Manifest reads on a registry: fetch with verification and `parseManifest`'s checks; and the
 * one encoding of a manifest to bytes.
 *
 * @module
 */
import {
  DigestMismatchError,
  digestOf,
  parseDigest,
} from "../../oci/digest.ts";
import { type ImageReference, manifestUrl } from "../../oci/reference.ts";
import { ensureStatus, redactUrl } from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../../oci/manifest.ts";
import { ALL_MANIFEST_MEDIA_TYPES } from "../../oci/media_types.ts";
import {
  ManifestError,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "../../oci/parse_manifest.ts";
import type { RegistryOptions } from "./blobs.ts";
import { readAtMost } from "../../io/bytes.ts";

/**
 * Serialises a manifest once to compact JSON and digests those exact bytes.
 *
 * @param manifest The manifest or index.
 * @returns The bytes, their digest and size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeManifest } from "./manifests.ts";
 * const { bytes, size } = encodeManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] });
 * assert.equal(size, bytes.byteLength);
 * ```
 */
export function encodeManifest(
  manifest: ImageManifest | ImageIndex,
): { bytes: Uint8Array; digest: string; size: number } {
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  return { bytes, digest: digestOf(bytes), size: bytes.byteLength };
}

/** A manifest or index as fetched: its descriptor, its exact bytes and the parsed document. */
export interface FetchedManifest {
  /** Media type, digest and size of the bytes. */
  readonly descriptor: Descriptor;
  /** The bytes as the registry sent them. */
  readonly bytes: Uint8Array;
  /** The parsed document. */
  readonly document: ImageManifest | ImageIndex;
}

async function readLimited(
  request: Request,
  response: Response,
  limit: number,
): Promise<Uint8Array> {
  const length = response.headers.get("content-length");
  const bytes = length !== null && Number(length) > limit
    ? (await response.body?.cancel(), undefined)
    : await readAtMost(response.body, limit);
  if (bytes === undefined) {
    throw new ManifestError(
      `${request.method} ${
        redactUrl(request.url)
      }: ${response.status}: the manifest is larger than ${limit} bytes`,
    );
  }
  return bytes;
}

/**
 * Fetches one manifest or index by the reference's digest (preferred) or tag, with `Accept`
 * listing every manifest and index type. A manifest fetched by digest is verified against it,
 * then {@linkcode parseManifest} checks it (leniently: a registry's `text/plain` gives way to
 * the document's `mediaType`).
 *
 * @param ref The image; its digest wins over its tag.
 * @param options Transport and signal.
 * @returns The descriptor, bytes and parsed document.
 * @throws {RegistryError} When the registry does not serve it.
 * @throws {ManifestError} When the body is not a usable manifest (the message names the request).
 * @throws {DigestMismatchError} When the bytes do not match the digest asked for.
 *
 * @example
 * ```ts ignore
 * const { descriptor, document } = await fetchManifest(parseReference("127.0.0.1:5000/app:v1"));
 * ```
 */
export async function fetchManifest(
  ref: ImageReference,
  options: RegistryOptions = {},
): Promise<FetchedManifest> {
  const transport = options.transport ?? defaultOpener();
  const request = new Request(manifestUrl(ref), {
    headers: { accept: ALL_MANIFEST_MEDIA_TYPES.join(", ") },
    signal: options.signal,
  });
  // A body cut off in transit fails here; reading it again is the resolver's (resolveImage).
  const response = await ensureStatus(request, await transport(request), 200);
  const bytes = await readLimited(request, response, MAX_MANIFEST_SIZE);
  const algorithm = ref.digest ? parseDigest(ref.digest).algorithm : "sha256";
  const digest = digestOf(bytes, algorithm);
  if (ref.digest !== undefined && digest !== ref.digest) {
    throw new DigestMismatchError(ref.digest, {
      digest,
      size: bytes.byteLength,
    }, {
      context: request.url,
    });
  }
  const parsed = parseManifest(bytes, response.headers.get("content-type"), {
    lenient: true,
    maxSize: MAX_MANIFEST_SIZE,
    context: `GET ${redactUrl(request.url)}: ${response.status}`,
  });
  return {
    descriptor: {
      mediaType: parsed.mediaType,
      digest,
      size: bytes.byteLength,
    },
    bytes,
    document: parsed.manifest,
  };
}
