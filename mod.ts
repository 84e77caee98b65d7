/**
 * **oci**: a client for OCI registries (ghcr.io, Docker Hub, Harbor, the CNCF distribution
 * registry, zot…) built on web standards: `Request`/`Response`, web streams, and SHA-256
 * computed while the bytes flow. The TypeScript successor of spack's `spack.oci`.
 *
 * One model: every place content lives is a {@linkcode Store} — a registry repository
 * ({@linkcode remoteStore}), an OCI image layout on disk ({@linkcode layoutStore}) or memory
 * ({@linkcode memoryStore}) — and every transfer is one copy between stores
 * ({@linkcode copyImage}, {@linkcode copyGraph}): pull is a copy into the stage and an extract,
 * push builds a config and manifest and copies. Requests go through an opener
 * ({@linkcode createOpener}: transport + redirects + retry + auth), any function with the shape
 * of `fetch`, so the embedded registry (`createRegistry()` from the `./server` entry) can stand in
 * for the network. Everything not listed here stays importable from its `src/` path, with no
 * promise of stability.
 *
 * @example Build an image in memory, copy it to the in-process registry, pull it back
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   copyImage,
 *   createLayer,
 *   memoryStore,
 *   openLayout,
 *   parseReference,
 *   pullImage,
 *   pushImage,
 *   remoteStore,
 * } from "./mod.ts";
 * import { createRegistry } from "./src/server/mod.ts";
 *
 * const work = await Deno.makeTempDir();
 * await Deno.mkdir(`${work}/tree`);
 * await Deno.writeTextFile(`${work}/tree/hello.txt`, "hello\n");
 * const stage = await openLayout(`${work}/stage`);
 *
 * // Build: pack the tree as a layer, write config + manifest into a memory store.
 * const images = memoryStore();
 * const layer = await createLayer(`${work}/tree`, stage);
 * const image = await pushImage({ store: images, tag: "v1" }, { layers: [layer] });
 *
 * // Copy to a registry: the embedded one, in-process (no socket).
 * const registry = createRegistry();
 * const ref = parseReference("127.0.0.1:5000/demo/app:v1");
 * await copyImage(images, remoteStore(ref, { opener: registry }), "v1");
 *
 * // Pull it back through the stage into a directory.
 * const pulled = await pullImage(ref, `${work}/out`, { cache: stage, transport: registry });
 * assert.equal(pulled.descriptor.digest, image.digest);
 * assert.equal(await Deno.readTextFile(`${work}/out/hello.txt`), "hello\n");
 * await Deno.remove(work, { recursive: true });
 * ```
 *
 * @example Parse a reference
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference } from "./mod.ts";
 *
 * const ref = parseReference("ubuntu:22.04");
 * assert.equal(formatReference(ref), "docker.io/library/ubuntu:22.04");
 * ```
 *
 * @module
 */

// Names and content: references, digests, platforms, manifests and media types (no I/O).
export {
  formatReference,
  type ImageReference,
  parseMirrorUrl,
  parseReference,
  type ParseReferenceOptions,
  ReferenceSyntaxError,
  sanitizeTag,
  withDigest,
  withTag,
} from "./src/oci/reference.ts";
export {
  type Digest,
  type DigestAlgorithm,
  DigestError,
  DigestMismatchError,
  digestOf,
  digestOfFile,
  type DigestResult,
  DigestStream,
  parseDigest,
  verifyStream,
  type VerifyStreamOptions,
} from "./src/oci/digest.ts";
export {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
  type Platform,
} from "./src/oci/platform.ts";
export {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  successors,
} from "./src/oci/manifest.ts";
export {
  IndexDepthError,
  type Manifest,
  ManifestError,
  type ParsedManifest,
  parseManifest,
  type ParseManifestOptions,
} from "./src/oci/parse_manifest.ts";
export {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  isIndexMediaType,
  isManifestMediaType,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_EMPTY_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_LAYER_TAR_MEDIA_TYPE,
  OCI_LAYER_ZSTD_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "./src/oci/media_types.ts";

// Talking to registries: the opener (transport + redirects + retry + auth) and its parts.
export { createOpener, type OpenerOptions } from "./src/transport/opener.ts";
export {
  createHttpTransport,
  httpTransport,
  type HttpTransportOptions,
} from "./src/transport/http_transport.ts";
export {
  type BlobSource,
  bytesSource,
  fileSource,
  type Transport,
} from "./src/transport/request_body.ts";
export {
  AuthenticationError,
  type AuthEvent,
  type AuthOptions,
  withAuth,
} from "./src/transport/auth.ts";
export {
  RegistryError,
  type RegistryErrorCode,
  RetryAfterError,
  TimeoutError,
  type TimeoutPhase,
  UnsafeUrlError,
  type UrlRule,
} from "./src/transport/errors.ts";
export {
  NetworkError,
  type NetworkErrorKind,
  withNetworkErrors,
} from "./src/transport/network_errors.ts";
export { type ProxySettings } from "./src/transport/proxy.ts";
export { withRedirects } from "./src/transport/redirects.ts";
export {
  type RetryEvent,
  type RetryPolicy,
  withRetry,
} from "./src/transport/retry.ts";
export { type Timeouts } from "./src/transport/timeouts.ts";
export {
  chainCredentials,
  type CredentialHelperRunner,
  type CredentialProvider,
  type Credentials,
  defaultCredentials,
  dockerConfigCredentials,
  type DockerConfigOptions,
  environmentCredentials,
  type EnvironmentCredentialsOptions,
  type EnvironmentReader,
  staticCredentials,
} from "./src/transport/credentials.ts";

// Where content lives: one Store interface, three implementations.
export {
  type BlobReader,
  type BlobSizer,
  type BlobUpload,
  type ByteRange,
  type CallOptions,
  type Deleter,
  fetchBytes,
  type FetchedManifest,
  fetchManifest,
  type Ingester,
  type Mounter,
  type PushOptions,
  type ReferrerLister,
  type ReferrersOptions,
  type Store,
  type TagLister,
  type Uploader,
} from "./src/store/store.ts";
export {
  type RemoteStore,
  remoteStore,
  type RemoteStoreOptions,
} from "./src/store/remote_store.ts";
export {
  type LayoutOptions,
  layoutStore,
  OciLayout,
  openLayout,
} from "./src/store/layout_store.ts";
export {
  type MemoryStore,
  memoryStore,
  type MemoryStoreOptions,
} from "./src/store/memory_store.ts";
export { encodeManifest } from "./src/store/remote/manifests.ts";
export { listTags, type ListTagsOptions } from "./src/store/remote/tags.ts";
export {
  listRepositories,
  type ListRepositoriesOptions,
} from "./src/store/remote/catalog.ts";
export { DeleteRefusedError } from "./src/store/remote/delete.ts";
export {
  type ProgressOptions,
  type TransferProgress,
} from "./src/store/remote/progress.ts";
export { type RegistryOptions } from "./src/store/remote/blobs.ts";

// What you do with images: resolve, copy, push, pull.
export {
  PlatformNotFoundError,
  readConfig,
  type ReadRetryOptions,
  type ResolvedImage,
  resolveImage,
  type ResolveOptions,
} from "./src/image/resolve.ts";
export {
  type BlobProgress,
  type BlobState,
  copyGraph,
  copyImage,
  type CopyOptions,
  type CopyResult,
  type OnBlob,
} from "./src/image/copy.ts";
export {
  type BaseImage,
  buildImage,
  type BuildImageOptions,
  type BuiltImage,
  checkPushAccess,
  pushImage,
  type PushImageOptions,
  pushIndex,
  type StoreTarget,
} from "./src/image/push.ts";
export {
  pullImage,
  type PullImageOptions,
  type PullResult,
  type StoreImage,
} from "./src/image/pull.ts";

// Content and referrers: tags, exact manifest bytes, blobs by digest, artifacts, every tag.
export { tagManifest } from "./src/image/tag.ts";
export {
  putManifestBytes,
  readManifestBytes,
  type ReadManifestBytesOptions,
} from "./src/image/manifest_bytes.ts";
export { downloadBlob, uploadFile } from "./src/image/blob.ts";
export {
  type ArtifactFile,
  pushArtifact,
  type PushArtifactOptions,
  type PushedArtifact,
} from "./src/image/artifact.ts";
export {
  type Conversion,
  copyAsOci,
  type CopyAsOciResult,
} from "./src/image/convert.ts";
export {
  type ArtifactFileWritten,
  type ManifestKind,
  manifestKind,
  NotPullableError,
  UnsafeTitleError,
  writeArtifactFiles,
  type WriteArtifactFilesOptions,
} from "./src/image/artifact_files.ts";
export {
  attachArtifact,
  copyReferrers,
  type CopyReferrersResult,
  listReferrers,
  type ListReferrersOptions,
  type ReferrerNode,
  referrerTree,
  type ReferrerTreeOptions,
} from "./src/image/referrers.ts";
export {
  copyAllTags,
  type CopyAllTagsOptions,
  type TagCopyResult,
} from "./src/image/copy_tags.ts";
export { type CopyShare, createCopyShare } from "./src/image/copy_share.ts";

// Layers.
export {
  type Compression,
  compressionOfLayer,
  layerMediaType,
  type ManifestFormat,
} from "./src/layer/compression.ts";
export { GzipFormatError } from "./src/layer/gunzip.ts";
export { ZstdFormatError } from "./src/layer/zstd.ts";
export {
  createLayer,
  type CreateLayerOptions,
  type Layer,
  type PackProgress,
} from "./src/layer/create_layer.ts";
export {
  extractLayer,
  type ExtractLayerOptions,
  type ExtractResult,
  LayerFormatError,
  UnsafeEntryError,
} from "./src/layer/extract_layer.ts";
