/**
 * Manifest operations on a registry: upload by tag or digest, fetch with verification, resolve
 * an index to a platform, and read the config.
 *
 * @module
 */
import {
  DigestMismatchError,
  digestOf,
  parseDigest,
} from "../../oci/digest.ts";
import {
  blobUrl,
  formatReference,
  type ImageReference,
  manifestUrl,
  withDigest,
} from "../../oci/reference.ts";
import {
  ensureStatus,
  redactUrl,
  RegistryError,
} from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import { createRequest } from "../../transport/request_body.ts";
import type {
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
} from "../../oci/manifest.ts";
import {
  ALL_MANIFEST_MEDIA_TYPES,
  isIndexMediaType,
  isManifestMediaType,
} from "../../oci/media_types.ts";
import {
  IndexDepthError,
  isPlatform,
  ManifestError,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "../../oci/parse_manifest.ts";
import {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  type Platform,
} from "../../oci/platform.ts";
import { fetchBlob, type RegistryOptions } from "./blobs.ts";
import { readAtMost } from "../../io/bytes.ts";
import type { OciLayout } from "../layout_store.ts";
import { stageBlob } from "../layout_store.ts";

/** Options of {@linkcode uploadManifest}. */
export interface UploadManifestOptions extends RegistryOptions {
  /**
   * Push by the reference's tag (true), or by the manifest's own digest (false: for the
   * per-platform manifests of an index).
   * @default {true}
   */
  readonly tag?: boolean;
}

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

/**
 * Uploads a manifest or index: PUT with `Content-Type` = its `mediaType`, by tag or by digest.
 *
 * @param ref Where to push; its tag is used unless `tag: false`.
 * @param manifest The manifest or index (its `mediaType` must be set).
 * @param options Transport, signal, and whether to push by tag.
 * @returns The descriptor of the uploaded manifest.
 * @throws {RegistryError} When the registry refuses it.
 *
 * @example
 * ```ts ignore
 * const { digest } = await uploadManifest(parseReference("127.0.0.1:5000/app:v1"), manifest);
 * ```
 */
export async function uploadManifest(
  ref: ImageReference,
  manifest: ImageManifest | ImageIndex,
  options: UploadManifestOptions = {},
): Promise<Descriptor> {
  if (
    !isManifestMediaType(manifest.mediaType) &&
    !isIndexMediaType(manifest.mediaType)
  ) {
    throw new TypeError(
      `Cannot upload manifest to ${
        formatReference(ref)
      }: its mediaType "${manifest.mediaType}" is not a manifest or index type`,
    );
  }
  const { bytes, digest, size } = encodeManifest(manifest);
  const descriptor = { mediaType: manifest.mediaType, digest, size };
  const reference = options.tag === false || ref.tag === undefined
    ? digest
    : ref.tag;
  await putManifestBytes(ref, bytes, descriptor, reference, options);
  return descriptor;
}

/**
 * PUTs a manifest's exact bytes under a tag or its digest, with `Content-Type` = its media
 * type, and checks the `Docker-Content-Digest` the registry answers.
 *
 * @param ref The repository.
 * @param bytes The manifest's bytes, as they will be stored.
 * @param descriptor Their media type and digest.
 * @param reference The tag, or the digest.
 * @param options Transport and signal.
 * @throws {RegistryError} When the registry refuses it or stores other bytes.
 *
 * @example
 * ```ts ignore
 * await putManifestBytes(ref, fetched.bytes, fetched.descriptor, "v1");
 * ```
 */
export async function putManifestBytes(
  ref: ImageReference,
  bytes: Uint8Array,
  descriptor: Descriptor,
  reference: string,
  options: RegistryOptions = {},
): Promise<void> {
  const transport = options.transport ?? defaultOpener();
  const request = createRequest(manifestUrl(ref, reference), {
    method: "PUT",
    headers: { "content-type": descriptor.mediaType },
    body: bytes,
    signal: options.signal,
  });
  const response = await ensureStatus(request, await transport(request), 201);
  await response.body?.cancel();
  const returned = response.headers.get("docker-content-digest");
  if (returned !== null && returned !== descriptor.digest) {
    throw new RegistryError({
      method: "PUT",
      url: request.url,
      status: response.status,
      reason:
        `the registry stored the manifest as ${returned}, but ${descriptor.digest} was sent`,
    });
  }
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

/**
 * Thrown when an index has no image for the platform asked for; lists the ones it has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PlatformNotFoundError } from "./manifests.ts";
 * const error = new PlatformNotFoundError("r/app:v1", { os: "linux", architecture: "s390x" }, [{ os: "linux", architecture: "amd64" }]);
 * assert.match(error.message, /available: linux\/amd64/);
 * ```
 */
export class PlatformNotFoundError extends Error {
  /** The platform asked for. */
  readonly wanted: Platform;
  /** The platforms the index has. */
  readonly available: readonly Platform[];

  /**
   * Creates the error.
   *
   * @param image The image, for the message.
   * @param wanted The platform asked for.
   * @param available The platforms the index has.
   */
  constructor(image: string, wanted: Platform, available: readonly Platform[]) {
    super(
      `Cannot find platform ${formatPlatform(wanted)} in ${image}: available: ${
        available.length ? available.map(formatPlatform).join(", ") : "none"
      }`,
    );
    this.name = "PlatformNotFoundError";
    this.wanted = wanted;
    this.available = available;
  }
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
  // A body cut off in transit is read again (the opener retries only whole responses).
  let response: Response;
  let bytes: Uint8Array;
  for (let attempt = 1;; attempt++) {
    response = await ensureStatus(
      request,
      await transport(request.clone()),
      200,
    );
    try {
      bytes = await readLimited(request, response, MAX_MANIFEST_SIZE);
      break;
    } catch (error) {
      if (
        error instanceof ManifestError || attempt >= 3 ||
        options.signal?.aborted
      ) {
        throw error;
      }
    }
  }
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

/**
 * Picks the entry of an index that serves a platform (see `matchPlatform`).
 *
 * @param index The index.
 * @param platform The platform wanted.
 * @param image The image's name, for the error.
 * @returns The first matching entry.
 * @throws {PlatformNotFoundError} When no entry matches; it lists the platforms there are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectPlatform } from "./manifests.ts";
 * const index = {
 *   schemaVersion: 2 as const,
 *   mediaType: "application/vnd.oci.image.index.v1+json",
 *   manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:1", size: 1, platform: { os: "linux", architecture: "arm64" } }],
 * };
 * assert.equal(selectPlatform(index, { os: "linux", architecture: "aarch64" }, "app").digest, "sha256:1");
 * ```
 */
export function selectPlatform(
  index: ImageIndex,
  platform: Platform,
  image: string,
): Descriptor {
  // Entries without a usable platform (or not objects at all) serve no platform.
  const entries = (Array.isArray(index.manifests) ? index.manifests : [])
    .filter((entry) =>
      typeof entry === "object" && entry !== null &&
      isPlatform(entry.platform)
    );
  const match = entries.find((entry) =>
    matchPlatform(platform, entry.platform!)
  );
  if (match === undefined) {
    throw new PlatformNotFoundError(
      image,
      platform,
      entries.map((e) => e.platform!),
    );
  }
  return match;
}

/** Options of {@linkcode getManifest}. */
export interface GetManifestOptions extends RegistryOptions {
  /**
   * The platform to pick from an index.
   * @default {hostPlatform()}
   */
  readonly platform?: Platform;
  /**
   * How many levels of index to follow.
   * @default {3}
   */
  readonly maxDepth?: number;
}

/** An image manifest resolved for one platform. */
export interface ResolvedManifest extends FetchedManifest {
  /** The manifest. */
  readonly document: ImageManifest;
  /** The reference of the manifest, by digest. */
  readonly ref: ImageReference;
  /** The index entry it was picked from, if any. */
  readonly index?: FetchedManifest;
}

/**
 * Fetches an image manifest, resolving indexes to the platform asked for (OS, architecture,
 * variant after normalisation, and `os.version` when given), recursively up to `maxDepth`.
 *
 * @param ref The image.
 * @param options Platform, depth bound, transport and signal.
 * @returns The manifest, its descriptor and bytes, and the index it came from.
 * @throws {PlatformNotFoundError} When an index has no image for the platform.
 * @throws {RegistryError} On registry errors.
 * @throws {IndexDepthError} When indexes nest deeper than `maxDepth`.
 *
 * @example
 * ```ts ignore
 * const { document } = await getManifest(parseReference("127.0.0.1:5000/app:v1"), { platform: parsePlatform("linux/arm64") });
 * ```
 */
export async function getManifest(
  ref: ImageReference,
  options: GetManifestOptions = {},
): Promise<ResolvedManifest> {
  const platform = options.platform ?? hostPlatform();
  const maxDepth = options.maxDepth ?? 3;
  let current = ref;
  let parent: FetchedManifest | undefined;
  for (let depth = 0;; depth++) {
    const fetched = await fetchManifest(current, options);
    if (isManifestMediaType(fetched.descriptor.mediaType)) {
      return {
        ...fetched,
        document: fetched.document as ImageManifest,
        ref: withDigest(current, fetched.descriptor.digest),
        index: parent,
      };
    }
    if (depth >= maxDepth) {
      throw new IndexDepthError(formatReference(ref), maxDepth);
    }
    const match = selectPlatform(
      fetched.document as ImageIndex,
      platform,
      formatReference(current),
    );
    parent = fetched;
    current = withDigest(current, match.digest);
  }
}

/**
 * Fetches a small blob (a config) into memory, verified, and parses it as JSON.
 *
 * @param ref The repository.
 * @param descriptor The blob's descriptor.
 * @param options Transport and signal.
 * @returns The parsed JSON.
 *
 * @example
 * ```ts ignore
 * const config = await fetchJsonBlob(ref, manifest.config);
 * ```
 */
export async function fetchJsonBlob<T>(
  ref: ImageReference,
  descriptor: Descriptor,
  options: RegistryOptions = {},
): Promise<T> {
  const refuse = (reason: string, cause?: unknown) =>
    new RegistryError({
      method: "GET",
      url: blobUrl(ref, descriptor.digest),
      status: 200,
      reason: `Cannot read blob ${descriptor.digest} of ${
        formatReference(ref)
      } as JSON: ${reason}`,
      cause,
    });
  if (descriptor.size > MAX_MANIFEST_SIZE) {
    throw refuse(
      `its size ${descriptor.size} is more than ${MAX_MANIFEST_SIZE} bytes`,
    );
  }
  const stream = await fetchBlob(ref, descriptor.digest, {
    ...options,
    size: descriptor.size,
  });
  const text = await new Response(stream).text();
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw refuse("it is not valid JSON", error);
  }
}

/**
 * The manifest of an image for a platform and its config (spack's `get_manifest_and_config`).
 * With a `stage`, the config goes through it: verified, cached, and reused next time.
 *
 * @param ref The image.
 * @param options Platform, depth bound, transport, signal, and the stage.
 * @returns The resolved manifest and the parsed config.
 *
 * @example
 * ```ts ignore
 * const { manifest, config } = await getManifestAndConfig(parseReference("127.0.0.1:5000/app:v1"));
 * ```
 */
export async function getManifestAndConfig(
  ref: ImageReference,
  options: GetManifestOptions & { stage?: OciLayout } = {},
): Promise<{ manifest: ResolvedManifest; config: ImageConfig }> {
  const manifest = await getManifest(ref, options);
  const descriptor = manifest.document.config;
  if (options.stage === undefined) {
    return {
      manifest,
      config: await fetchJsonBlob<ImageConfig>(ref, descriptor, options),
    };
  }
  const refuse = (reason: string, cause?: unknown) =>
    new RegistryError({
      method: "GET",
      url: blobUrl(ref, descriptor.digest),
      status: 200,
      reason: `Cannot read config ${descriptor.digest} of ${
        formatReference(ref)
      }: ${reason}`,
      cause,
    });
  if (descriptor.size > MAX_MANIFEST_SIZE) {
    throw refuse(
      `its size ${descriptor.size} is more than ${MAX_MANIFEST_SIZE} bytes`,
    );
  }
  const path = await stageBlob(options.stage, ref, descriptor, options);
  const text = await Deno.readTextFile(path);
  try {
    return { manifest, config: JSON.parse(text) as ImageConfig };
  } catch (error) {
    throw refuse("it is not valid JSON", error);
  }
}
