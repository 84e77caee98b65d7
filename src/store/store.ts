/**
 * One small interface over content-addressed storage, implemented by a repository on a registry
 * and by an OCI image layout on disk, so that copies work between any two of them.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import type { FetchedManifest } from "../registry/manifests.ts";
import type { BlobSource } from "../transport/request_body.ts";

/** Options every {@linkcode Store} method takes. */
export interface StoreOptions {
  /**
   * Cancels the call: it rejects with the signal's reason, a transfer stops at once and
   * nothing partial is kept. A store made with a signal of its own honours both.
   */
  readonly signal?: AbortSignal;
}

/** Content-addressed storage of blobs and manifests. */
export interface Store {
  /** A name for messages, e.g. `127.0.0.1:5000/app` or `oci:/tmp/cache`. */
  readonly name: string;
  /** The registry (`host[:port]`) of a remote store, for mounts; undefined for local stores. */
  readonly registry?: string;
  /** The repository of a remote store, for mounts. */
  readonly repository?: string;
  /** Tells whether the store has a blob. */
  hasBlob(descriptor: Descriptor, options?: StoreOptions): Promise<boolean>;
  /**
   * Opens a blob; the stream errors if the bytes do not match the descriptor, and with the
   * signal's reason once it aborts (also after this returned).
   */
  fetchBlob(
    descriptor: Descriptor,
    options?: StoreOptions,
  ): Promise<ReadableStream<Uint8Array>>;
  /**
   * Stores a blob. `mountFrom` names a repository of the same registry that has it, which a
   * remote store may mount from instead of uploading.
   */
  pushBlob(
    descriptor: Descriptor,
    source: BlobSource,
    options?: StoreOptions & { mountFrom?: string },
  ): Promise<void>;
  /** Fetches a manifest or index by tag or digest. */
  fetchManifest(
    reference: string,
    options?: StoreOptions,
  ): Promise<FetchedManifest>;
  /** Stores a manifest or index under its digest, and under a tag when given. */
  pushManifest(
    bytes: Uint8Array,
    descriptor: Descriptor,
    tag?: string,
    options?: StoreOptions,
  ): Promise<void>;
}
