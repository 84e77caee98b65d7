/**
 * One small interface over content-addressed storage, implemented by a repository on a registry
 * and by an OCI image layout on disk, so that copies work between any two of them; optional
 * capabilities (mount, list tags, ingest a stream of unknown digest, delete, list referrers,
 * serve blobs by digest, uploads in pieces) are separate interfaces.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import { isIndexMediaType, isManifestMediaType } from "../oci/media_types.ts";
import { MAX_MANIFEST_SIZE, parseManifest } from "../oci/parse_manifest.ts";
import { readAtMost } from "../io/bytes.ts";
import type { BlobSource } from "../transport/request_body.ts";
import type { FetchedManifest } from "./remote/manifests.ts";

export type { FetchedManifest };

/** Options every {@linkcode Store} method takes. */
export interface CallOptions {
  /**
   * Cancels the call: it rejects with the signal's reason, a transfer stops at once and
   * nothing partial is kept. A store made with a signal of its own honours both.
   */
  readonly signal?: AbortSignal;
}

/** @deprecated Use {@linkcode CallOptions}. */
export type StoreOptions = CallOptions;

/** Options of {@linkcode Store.push}. */
export interface PushOptions extends CallOptions {
  /** Also name what is pushed by this tag (manifests and indexes). */
  readonly tag?: string;
  /**
   * The source's stream is one another store already verifies against the descriptor while it
   * streams: the store need not hash it a second time.
   * @default {false}
   */
  readonly verified?: boolean;
}

/** Content-addressed storage of blobs and manifests. */
export interface Store {
  /** A name for messages, e.g. `127.0.0.1:5000/app` or `oci:/tmp/cache`. */
  readonly name: string;
  /** Tells whether the store has a blob or manifest. */
  exists(descriptor: Descriptor, options?: CallOptions): Promise<boolean>;
  /**
   * Opens a blob or manifest; the stream errors if the bytes do not match the descriptor, and
   * with the signal's reason once it aborts (also after this returned).
   */
  fetch(
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<ReadableStream<Uint8Array>>;
  /**
   * Stores a blob, or a manifest or index when the descriptor's media type says so (then under
   * `tag` as well when given).
   */
  push(
    descriptor: Descriptor,
    source: BlobSource,
    options?: PushOptions,
  ): Promise<void>;
  /** Finds the descriptor of a manifest or index by tag or digest. */
  resolve(reference: string, options?: CallOptions): Promise<Descriptor>;
}

/** A store that can take a blob from another store without the bytes passing through here. */
export interface Mounter {
  /** Tells whether {@linkcode Mounter.mount} can take blobs from `from`. */
  canMount(from: Store): boolean;
  /**
   * Mounts a blob from another store (a repository of the same registry). A registry that
   * offers an upload instead gets `fallback` in that session.
   *
   * @returns True when mounted, false when the fallback was uploaded.
   */
  mount(
    descriptor: Descriptor,
    from: Store,
    options?: CallOptions & { fallback?: BlobSource },
  ): Promise<boolean>;
}

/**
 * A store whose blobs are local bytes it already verified when it got them (the layers a push
 * has just packed, the config it built): a copy sends them as they are, without hashing them
 * on the way, and leaves the check to the target (a registry checks every upload; a layout or
 * memory store hashes whatever it is not told is verified).
 */
export interface LocalBlobs {
  /** A re-openable source over the bytes of a blob the store holds. */
  blobSource(
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<BlobSource>;
}

/**
 * Tells whether a store has the {@linkcode LocalBlobs} capability.
 *
 * @param store The store.
 * @returns True when it hands out its blobs' bytes unhashed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasLocalBlobs } from "./store.ts";
 * assert.ok(!hasLocalBlobs({ name: "x" } as never));
 * ```
 */
export function hasLocalBlobs<S extends Store>(
  store: S,
): store is S & LocalBlobs {
  return typeof (store as Partial<LocalBlobs>).blobSource === "function";
}

/** A store that lists its tags. */
export interface TagLister {
  /** The tags, in the store's order. */
  listTags(options?: CallOptions & { pageSize?: number }): Promise<string[]>;
}

/** A store that takes a stream whose digest is not known up front. */
export interface Ingester {
  /** Stores the stream as a blob and returns its descriptor. */
  ingest(
    stream: ReadableStream<Uint8Array>,
    mediaType: string,
    options?: CallOptions,
  ): Promise<Descriptor>;
}

/**
 * A store that removes what it holds (the registry's `DELETE`s; `oci delete` builds on it).
 */
export interface Deleter {
  /**
   * Removes a manifest or index (with every tag naming it), or a blob, as the descriptor's
   * media type says.
   *
   * @returns False when the store did not hold it.
   */
  delete(descriptor: Descriptor, options?: CallOptions): Promise<boolean>;
  /**
   * Removes a tag; the manifest it named stays, by digest.
   *
   * @returns False when no such tag was there.
   */
  untag(tag: string, options?: CallOptions): Promise<boolean>;
}

/** Options of {@linkcode ReferrerLister.referrers}. */
export interface ReferrersOptions extends CallOptions {
  /** Only the referrers of this artifact type. */
  readonly artifactType?: string;
}

/** A store that finds the manifests whose `subject` is a given manifest (the referrers API). */
export interface ReferrerLister {
  /**
   * The manifests and indexes the store holds whose `subject` has this digest, each with its
   * `artifactType` (or its config's media type) and annotations, in the store's order.
   */
  referrers(subject: string, options?: ReferrersOptions): Promise<Descriptor[]>;
}

/** A byte range of a blob: `start` and `end` inclusive. */
export interface ByteRange {
  /** The first byte. */
  readonly start: number;
  /** The last byte. */
  readonly end: number;
}

/** A store that tells a blob's size by its digest (a registry by HEAD, a layout by stat). */
export interface BlobSizer {
  /** The size of a blob the store holds, or undefined. */
  blobSize(digest: string, options?: CallOptions): Promise<number | undefined>;
}

/**
 * Tells whether a store has the {@linkcode BlobSizer} capability.
 *
 * @param store The store.
 * @returns True when it tells a blob's size by its digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasBlobSize } from "./store.ts";
 * import { memoryStore } from "./memory_store.ts";
 * assert.ok(hasBlobSize(memoryStore()));
 * ```
 */
export function hasBlobSize<S extends Store>(
  store: S,
): store is S & BlobSizer {
  return typeof (store as Partial<BlobSizer>).blobSize === "function";
}

/**
 * A store that serves blobs by digest as they are stored, for a registry whose clients verify
 * what they read: the size, and the bytes whole or a byte range, not hashed on the way.
 */
export interface BlobReader extends BlobSizer {
  /**
   * The bytes of a blob (or of `range`), unverified.
   *
   * @throws {Deno.errors.NotFound} When the store does not hold it.
   */
  readBlob(
    digest: string,
    options?: CallOptions & { range?: ByteRange },
  ): Promise<ReadableStream<Uint8Array>>;
}

/**
 * A blob that arrives in pieces, hashed (sha256) as they come: a registry's upload session.
 * It holds no file descriptor between calls, so that unfinished uploads cost no more than
 * their bytes.
 */
export interface BlobUpload {
  /** Bytes received so far. */
  readonly size: number;
  /**
   * Appends bytes; returns the new size. All or nothing: when it rejects (the stream failed, a
   * limit was reached), the upload is as it was before the call.
   *
   * @param stream The bytes.
   * @param declared The length the sender announced, if it did: a store refuses at once
   *   ({@linkcode UploadLimitError}) what it could not hold, before reading a byte.
   */
  append(
    stream: ReadableStream<Uint8Array>,
    declared?: number,
  ): Promise<number>;
  /** The sha256 digest of everything appended so far. */
  digest(): string;
  /**
   * Stores the bytes as the blob `digest` (synced and renamed into place on disk) and ends the
   * upload.
   *
   * @throws {DigestMismatchError} When the bytes have another digest; nothing is stored.
   */
  commit(digest: string, options?: CallOptions): Promise<Descriptor>;
  /** Drops the bytes and ends the upload. */
  cancel(): Promise<void>;
}

/** A store that takes blobs in pieces over several calls ({@linkcode BlobUpload}). */
export interface Uploader {
  /** Starts an upload. */
  startUpload(options?: CallOptions): Promise<BlobUpload>;
}

/**
 * An upload refused for room: the store holds as many unfinished bytes as it may. `scope` is
 * `"upload"` when this one upload alone is larger than the limit (retrying cannot help), and
 * `"total"` when unfinished uploads together fill it (retrying later may).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UploadLimitError } from "./store.ts";
 * const error = new UploadLimitError("total", 1024);
 * assert.match(error.message, /1024 bytes/);
 * ```
 */
export class UploadLimitError extends Error {
  /** Whether the one upload or all unfinished uploads together hit the limit. */
  readonly scope: "upload" | "total";
  /** The limit, in bytes. */
  readonly limit: number;
  /**
   * Makes the error; its message says which limit, and whether retrying can help.
   *
   * @param scope `"upload"` or `"total"`.
   * @param limit The limit, in bytes.
   */
  constructor(scope: "upload" | "total", limit: number) {
    super(
      scope === "upload"
        ? `the upload would be larger than the ${limit} bytes unfinished uploads may hold`
        : `unfinished uploads already hold close to the ${limit} bytes allowed; finish or cancel some`,
    );
    this.name = "UploadLimitError";
    this.scope = scope;
    this.limit = limit;
  }
}

/**
 * Tells whether a store has the {@linkcode Mounter} capability.
 *
 * @param store The store.
 * @returns True when it can mount.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isMounter } from "./store.ts";
 * assert.ok(!isMounter({ name: "x" } as never));
 * ```
 */
export function isMounter<S extends Store>(store: S): store is S & Mounter {
  return typeof (store as Partial<Mounter>).mount === "function";
}

/**
 * Reads a whole blob (a config, a manifest) out of a store, refusing more than `maxSize`.
 *
 * @param store The store.
 * @param descriptor The blob.
 * @param options Largest size accepted and a signal.
 * @returns The verified bytes.
 * @throws {RangeError} When the descriptor is larger than `maxSize`.
 *
 * @example
 * ```ts ignore
 * const bytes = await fetchBytes(store, manifest.config);
 * ```
 */
export async function fetchBytes(
  store: Store,
  descriptor: Descriptor,
  options: CallOptions & { maxSize?: number } = {},
): Promise<Uint8Array> {
  const maxSize = options.maxSize ?? MAX_MANIFEST_SIZE;
  if (descriptor.size > maxSize) {
    throw new RangeError(
      `Cannot read ${descriptor.digest} of ${store.name}: ${descriptor.size} bytes is too large`,
    );
  }
  const stream = await store.fetch(descriptor, options);
  const bytes = await readAtMost(stream, maxSize);
  if (bytes === undefined) {
    throw new RangeError(
      `Cannot read ${descriptor.digest} of ${store.name}: more than ${maxSize} bytes`,
    );
  }
  return bytes;
}

/**
 * Reads a manifest or index out of any store by tag, digest or descriptor, and checks it with
 * {@linkcode parseManifest} (the one check every store gets).
 *
 * @param store The store.
 * @param reference A tag, a digest, or the descriptor.
 * @param options A signal.
 * @returns The descriptor, bytes and parsed document.
 *
 * @example
 * ```ts ignore
 * const { document } = await fetchManifest(store, "v1");
 * ```
 */
export async function fetchManifest(
  store: Store,
  reference: string | Descriptor,
  options: CallOptions = {},
): Promise<FetchedManifest> {
  const descriptor = await store.resolve(
    typeof reference === "string" ? reference : reference.digest,
    options,
  );
  const bytes = await fetchBytes(store, descriptor, options);
  const parsed = parseManifest(bytes, descriptor.mediaType, {
    lenient: true,
    context: `Cannot read manifest ${descriptor.digest} of ${store.name}`,
  });
  return {
    descriptor: { ...descriptor, mediaType: parsed.mediaType },
    bytes,
    document: parsed.manifest,
  };
}

/**
 * Tells whether a media type names a manifest or an index (what {@linkcode Store.push} stores
 * as one).
 *
 * @param mediaType The media type.
 * @returns True for manifests and indexes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isManifestOrIndex } from "./store.ts";
 * assert.ok(isManifestOrIndex("application/vnd.oci.image.index.v1+json"));
 * assert.ok(!isManifestOrIndex("application/vnd.oci.image.layer.v1.tar+gzip"));
 * ```
 */
export function isManifestOrIndex(mediaType: string): boolean {
  return isManifestMediaType(mediaType) || isIndexMediaType(mediaType);
}

/**
 * The referrer descriptor of a manifest or index whose `subject` is `subject` (and whose
 * artifact type, its `artifactType` or else its config's media type, is `artifactType` when
 * given), for {@linkcode ReferrerLister.referrers}; undefined for any other document, or
 * bytes that are not JSON.
 *
 * @param descriptor The manifest.
 * @param bytes Its bytes.
 * @param subject The subject's digest.
 * @param artifactType The artifact type wanted, if any.
 * @returns The descriptor with `artifactType` and `annotations`, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referrerOf } from "./store.ts";
 * const bytes = new TextEncoder().encode(JSON.stringify({
 *   schemaVersion: 2, artifactType: "application/x.sig", subject: { digest: "sha256:ab" },
 * }));
 * const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:cd", size: bytes.byteLength };
 * assert.equal(referrerOf(descriptor, bytes, "sha256:ab")?.artifactType, "application/x.sig");
 * assert.equal(referrerOf(descriptor, bytes, "sha256:ef"), undefined);
 * ```
 */
export function referrerOf(
  descriptor: Descriptor,
  bytes: Uint8Array,
  subject: string,
  artifactType?: string,
): Descriptor | undefined {
  let document: {
    subject?: { digest?: unknown };
    artifactType?: string;
    config?: { mediaType?: string };
    annotations?: Record<string, string>;
  } | undefined;
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (document?.subject?.digest !== subject) return undefined;
  const type = document.artifactType ?? document.config?.mediaType;
  if (artifactType !== undefined && type !== artifactType) return undefined;
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(type ? { artifactType: type } : {}),
    ...(document.annotations ? { annotations: document.annotations } : {}),
  };
}
