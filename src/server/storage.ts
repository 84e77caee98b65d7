/**
 * What the embedded registry stores, behind one small interface: content-addressed blobs,
 * upload sessions hashed while bytes arrive, and manifests by digest with tags per repository.
 *
 * @module
 */

/** A stored manifest: its exact bytes and media type. */
export interface StoredManifest {
  /** The exact bytes that were pushed. */
  readonly bytes: Uint8Array;
  /** The media type it was pushed with. */
  readonly mediaType: string;
  /** Its digest. */
  readonly digest: string;
}

/** An upload in progress: bytes appended in order, hashed as they arrive. */
export interface UploadSession {
  /** Bytes received so far. */
  readonly size: number;
  /** Appends bytes; returns the new size. */
  append(stream: ReadableStream<Uint8Array>): Promise<number>;
  /** The sha256 digest of everything appended. */
  digest(): string;
  /** Stores the bytes as a blob under `digest` (already checked) and links it to a repository. */
  commit(repository: string, digest: string): Promise<void>;
  /** Drops the bytes. */
  cancel(): Promise<void>;
}

/** The registry's storage. Implementations must be safe under concurrent requests. */
export interface RegistryStorage {
  /**
   * The size of a blob linked to the repository (pushed or mounted there), or undefined.
   * Without a repository: the size of the blob anywhere in the registry.
   */
  blobSize(
    repository: string | undefined,
    digest: string,
  ): Promise<number | undefined>;
  /** Reads a blob (a byte range when given: `start` and `end` inclusive). */
  readBlob(
    digest: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array>>;
  /** Links a blob that exists in the registry to another repository (a mount). */
  linkBlob(repository: string, digest: string): Promise<void>;
  /** Unlinks a blob from a repository; false when it was not linked. */
  deleteBlob(repository: string, digest: string): Promise<boolean>;
  /** Starts an upload. */
  startUpload(): Promise<UploadSession>;
  /** A manifest of a repository by tag or digest, or undefined. */
  getManifest(
    repository: string,
    reference: string,
  ): Promise<StoredManifest | undefined>;
  /** Stores a manifest under its digest, and under a tag when given. */
  putManifest(
    repository: string,
    manifest: StoredManifest,
    tag?: string,
  ): Promise<void>;
  /** Deletes a tag, or a manifest by digest with every tag naming it; false when unknown. */
  deleteManifest(repository: string, reference: string): Promise<boolean>;
  /** The tags of a repository, sorted, or undefined when the repository is unknown. */
  listTags(repository: string): Promise<string[] | undefined>;
  /** Every manifest of a repository (for the referrers API). */
  listManifests(repository: string): Promise<StoredManifest[]>;
}
