/**
 * One small interface over content-addressed storage, implemented by a repository on a registry
 * and by an OCI image layout on disk, so that copies work between any two of them; optional
 * capabilities (mount, list tags, ingest a stream of unknown digest) are separate interfaces.
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
