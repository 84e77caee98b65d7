/**
 * The one resolver of a reference in any {@linkcode Store} to an image manifest for a
 * platform (following indexes), and the one reader of an image's config.
 *
 * @module
 */
import type {
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
} from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  type Platform,
} from "../oci/platform.ts";
import { parseDigest } from "../oci/digest.ts";
import { IndexDepthError, isPlatform } from "../oci/parse_manifest.ts";
import {
  type CallOptions,
  fetchBytes,
  type FetchedManifest,
  fetchManifest,
  type Store,
} from "../store/store.ts";
import { retryTransient } from "../transport/transient.ts";
import { DigestMismatchError } from "../oci/digest.ts";
import { TimeoutError } from "../transport/errors.ts";
import { NetworkError } from "../transport/network_errors.ts";

/**
 * Thrown when an index has no image for the platform asked for; lists the ones it has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PlatformNotFoundError } from "./resolve.ts";
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
 * import { selectPlatform } from "./resolve.ts";
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

/**
 * Whether a read failed on its bytes (cut off, stalled or damaged after the answer began):
 * what a manifest or config read starts again for. A request that got no answer (refused, no
 * headers, a status) is the opener's to retry, and was.
 */
function isCutOrDamaged(error: unknown): boolean {
  return error instanceof DigestMismatchError ||
    (error instanceof TimeoutError && error.phase === "body") ||
    (error instanceof NetworkError && error.kind === "reset") ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.ConnectionReset;
}

/** How a read of a manifest or config starts again when its bytes arrive cut or damaged. */
export interface ReadRetryOptions extends CallOptions {
  /**
   * Reads in all of one manifest (or config) when its body is cut off, stalls or arrives
   * damaged (the opener retries requests that got no answer).
   * @default {5}
   */
  readonly attempts?: number;
  /**
   * Told before a read starts again, with the error that ended the previous attempt, that
   * attempt's number (from 1) and the attempts in all.
   */
  readonly onRetry?: (
    error: unknown,
    attempt: number,
    attempts: number,
  ) => void;
}

/** Options of {@linkcode resolveImage}. */
export interface ResolveOptions extends ReadRetryOptions {
  /** The platform to pick from an index. @default {hostPlatform()} */
  readonly platform?: Platform;
  /** How many levels of nested index to follow. @default {3} */
  readonly maxDepth?: number;
}

/** An image manifest resolved for a platform. */
export interface ResolvedImage {
  /** The image manifest as fetched. */
  readonly manifest: FetchedManifest & { readonly document: ImageManifest };
  /** The index it was picked from (the innermost one), if any. */
  readonly index?: FetchedManifest;
}

/** `store:tag` or `store@digest`, for messages. */
function imageName(store: Store, reference: string): string {
  try {
    parseDigest(reference);
    return `${store.name}@${reference}`;
  } catch {
    return `${store.name}:${reference}`;
  }
}

/**
 * Reads a manifest or index out of a store ({@linkcode fetchManifest}: verified, checked by
 * `parseManifest`), reading it again when its bytes arrive cut off or damaged: the one retry of
 * a manifest read (a blob's is the copy's). A request that got no answer is not made again
 * here: the opener already retried it.
 *
 * @param store The store.
 * @param reference A tag, a digest or a descriptor.
 * @param options Attempts, a retry callback and a signal.
 * @returns The descriptor, bytes and parsed document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readManifest } from "./resolve.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
 * const descriptor = { mediaType: "application/vnd.oci.image.index.v1+json", digest: digestOf(bytes), size: bytes.byteLength };
 * await store.push(descriptor, bytesSource(bytes), { tag: "v1" });
 * assert.equal((await readManifest(store, "v1")).descriptor.digest, descriptor.digest);
 * ```
 */
export async function readManifest(
  store: Store,
  reference: string | Descriptor,
  options: ReadRetryOptions = {},
): Promise<FetchedManifest> {
  return await retryTransient(
    () => fetchManifest(store, reference, { signal: options.signal }),
    { ...options, retryOn: isCutOrDamaged },
  );
}

/**
 * Resolves a reference in any store to one image manifest for a platform: an index is resolved
 * to the entry for the platform (OS, architecture, variant after normalisation, and
 * `os.version` when given), nested indexes likewise, up to `maxDepth` levels. Every read is
 * verified and checked by `parseManifest`, and read again when its bytes arrive cut off.
 *
 * @param store Where the image is.
 * @param reference A tag or digest.
 * @param options Platform, depth bound, attempts and a signal.
 * @returns The manifest as fetched, and the index it was picked from if any.
 * @throws {PlatformNotFoundError} When an index lacks the platform.
 * @throws {IndexDepthError} When indexes nest deeper than `maxDepth`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveImage } from "./resolve.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * const put = async (document: object, mediaType: string, tag?: string) => {
 *   const bytes = new TextEncoder().encode(JSON.stringify(document));
 *   const descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
 *   await store.push(descriptor, bytesSource(bytes), { tag });
 *   return descriptor;
 * };
 * const config = await put({}, "application/vnd.oci.image.config.v1+json");
 * const image = await put({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [] }, "application/vnd.oci.image.manifest.v1+json");
 * await put({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ ...image, platform: { os: "linux", architecture: "arm64" } }] }, "application/vnd.oci.image.index.v1+json", "v1");
 * const { manifest, index } = await resolveImage(store, "v1", { platform: { os: "linux", architecture: "arm64" } });
 * assert.equal(manifest.descriptor.digest, image.digest);
 * assert.ok(index !== undefined);
 * ```
 */
export async function resolveImage(
  store: Store,
  reference: string,
  options: ResolveOptions = {},
): Promise<ResolvedImage> {
  const platform = options.platform ?? hostPlatform();
  const maxDepth = options.maxDepth ?? 3;
  const name = imageName(store, reference);
  let fetched = await readManifest(store, reference, options);
  let index: FetchedManifest | undefined;
  for (let depth = 0; isIndexMediaType(fetched.descriptor.mediaType); depth++) {
    if (depth >= maxDepth) throw new IndexDepthError(name, maxDepth);
    const match = selectPlatform(
      fetched.document as ImageIndex,
      platform,
      depth === 0 ? name : imageName(store, fetched.descriptor.digest),
    );
    index = fetched;
    fetched = await readManifest(store, match.digest, options);
  }
  return {
    manifest: fetched as ResolvedImage["manifest"],
    index,
  };
}

/**
 * Reads an image's config out of a store: verified, at most 4 MiB, parsed as JSON (read again
 * when its bytes arrive cut off or damaged).
 *
 * @param store The store.
 * @param descriptor The config's descriptor.
 * @param options Attempts, a retry callback and a signal.
 * @returns The parsed config.
 * @throws {RangeError} When the config is larger than 4 MiB.
 * @throws {SyntaxError} When it is not JSON; the message names the blob and the store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readConfig } from "./resolve.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * const bytes = new TextEncoder().encode('{"os":"linux"}');
 * const descriptor = { mediaType: "application/vnd.oci.image.config.v1+json", digest: digestOf(bytes), size: bytes.byteLength };
 * await store.push(descriptor, bytesSource(bytes));
 * assert.equal((await readConfig(store, descriptor)).os, "linux");
 * ```
 */
export async function readConfig(
  store: Store,
  descriptor: Descriptor,
  options: ReadRetryOptions = {},
): Promise<ImageConfig> {
  const bytes = await retryTransient(
    () => fetchBytes(store, descriptor, { signal: options.signal }),
    { ...options, retryOn: isCutOrDamaged },
  );
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as ImageConfig;
  } catch (error) {
    throw new SyntaxError(
      `Cannot read config ${descriptor.digest} of ${store.name}: it is not valid JSON`,
      { cause: error },
    );
  }
}
