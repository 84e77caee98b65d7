/**
 * What the embedded registry stores, behind one small interface: content-addressed blobs,
 * upload sessions hashed while bytes arrive, and manifests by digest with tags per repository.
 *
 * @module
 */
import { PATH_COMPONENT_REGEXP } from "../oci/reference.ts";

/** A stored manifest: its exact bytes and media type. */
export interface StoredManifest {
  /** The exact bytes that were pushed. */
  readonly bytes: Uint8Array;
  /** The media type it was pushed with. */
  readonly mediaType: string;
  /** Its digest. */
  readonly digest: string;
}

/**
 * An upload in progress: bytes appended in order, hashed as they arrive. A session holds no
 * file descriptor between calls, so that unfinished sessions cost no more than their bytes.
 */
export interface UploadSession {
  /** Bytes received so far. */
  readonly size: number;
  /**
   * Appends bytes; returns the new size. All or nothing: when it rejects (the stream failed, a
   * limit was reached), the session is as it was before the call.
   *
   * @param stream The bytes.
   * @param declared The length the client announced, if it did: a storage refuses at once
   *   ({@linkcode UploadLimitError}) what it could not hold, before reading a byte.
   */
  append(
    stream: ReadableStream<Uint8Array>,
    declared?: number,
  ): Promise<number>;
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

/**
 * The names an OCI image layout gives its own entries. A repository is stored as a layout in
 * the directory its name spells (`ROOT/team/app/`), so no component of a name may be one of
 * these: `team/app/blobs` would be a directory inside `team/app`'s blob store, and
 * `team/index.json` would replace `team`'s index with a directory.
 */
export const RESERVED_NAME_COMPONENTS: readonly string[] = [
  "blobs",
  "index.json",
  "oci-layout",
];

/** Longest repository name, in characters (as distribution). */
const MAX_NAME_LENGTH = 255;

/**
 * A repository name the registry refuses, with the component at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRepositoryName, RepositoryNameError } from "./storage.ts";
 * assert.throws(() => checkRepositoryName("team/app/blobs"), RepositoryNameError);
 * ```
 */
export class RepositoryNameError extends Error {
  /** The whole name. */
  readonly repository: string;
  /** The component at fault (the whole name when its length is). */
  readonly component: string;
  /**
   * Makes the error; its message names the repository and the reason.
   *
   * @param repository The name.
   * @param component The component at fault.
   * @param reason Why it is refused.
   */
  constructor(repository: string, component: string, reason: string) {
    super(`invalid repository name "${repository}": ${reason}`);
    this.name = "RepositoryNameError";
    this.repository = repository;
    this.component = component;
  }
}

/**
 * Checks a repository name: 1 to 255 characters, `/`-separated components of lowercase
 * letters and digits joined by `.`, `_`, `__` or dashes (the distribution spec's grammar), and
 * no component that an OCI image layout uses for itself ({@linkcode RESERVED_NAME_COMPONENTS}).
 * Components cannot start with `.`, so `.blobs`, `..` and the like are refused too.
 *
 * @param repository The name.
 * @throws {RepositoryNameError} Naming the component at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRepositoryName } from "./storage.ts";
 * checkRepositoryName("team/app");
 * assert.throws(() => checkRepositoryName("victim/index.json/x"), /"index\.json" is reserved/);
 * assert.throws(() => checkRepositoryName("team/.blobs"), /"\.blobs" is not/);
 * ```
 */
export function checkRepositoryName(repository: string): void {
  if (repository.length === 0 || repository.length > MAX_NAME_LENGTH) {
    throw new RepositoryNameError(
      repository,
      repository,
      `a name has 1 to ${MAX_NAME_LENGTH} characters, this one ${repository.length}`,
    );
  }
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT_REGEXP.test(component)) {
      throw new RepositoryNameError(
        repository,
        component,
        `the component "${component}" is not lowercase letters and digits joined by ".", "_", "__" or "-"`,
      );
    }
    if (RESERVED_NAME_COMPONENTS.includes(component)) {
      throw new RepositoryNameError(
        repository,
        component,
        `the component "${component}" is reserved: OCI image layouts use it (reserved: ${
          RESERVED_NAME_COMPONENTS.join(", ")
        })`,
      );
    }
  }
}

/**
 * An upload refused for room: the storage holds as many unfinished bytes as it may. `scope` is
 * `"upload"` when this one upload alone is larger than the limit (retrying cannot help), and
 * `"total"` when unfinished uploads together fill it (retrying later may).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UploadLimitError } from "./storage.ts";
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
