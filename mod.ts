/**
 * **oci**: a client for OCI registries (ghcr.io, Docker Hub, Harbor, the CNCF distribution
 * registry, zot…) built on web standards: `fetch`, web streams, and SHA-256 computed while the
 * bytes flow. The TypeScript successor of spack's `spack.oci`.
 *
 * The pieces are small functions that compose: references and digests name content; the opener
 * (`createOpener`: fetch + redirects + retry + auth) talks to registries; blob and manifest
 * operations take the opener as an option, so tests and users can swap any part.
 *
 * @example Parse a reference and build its URLs
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, manifestUrl, parseReference } from "./mod.ts";
 *
 * const ref = parseReference("ubuntu:22.04");
 * assert.equal(formatReference(ref), "docker.io/library/ubuntu:22.04");
 * assert.equal(manifestUrl(ref), "https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04");
 * ```
 *
 * @example Hash a stream while it flows
 * ```ts
 * import assert from "node:assert/strict";
 * import { DigestStream } from "./mod.ts";
 *
 * const hasher = new DigestStream();
 * await new Response("hello").body!.pipeThrough(hasher).pipeTo(new WritableStream());
 * assert.equal((await hasher.result).size, 5);
 * ```
 *
 * @example Talk to a registry through the opener
 * ```ts
 * import assert from "node:assert/strict";
 * import { createOpener, ensureStatus } from "./mod.ts";
 *
 * // Any `(Request) => Promise<Response>` can be the bottom transport, e.g. an in-process handler.
 * const registry = (request: Request) =>
 *   Promise.resolve(new URL(request.url).pathname === "/v2/" ? new Response("{}") : new Response(null, { status: 404 }));
 * const open = createOpener({ transport: registry, credentials: () => Promise.resolve(undefined) });
 * const request = new Request("http://127.0.0.1:5000/v2/");
 * await ensureStatus(request, await open(request), 200);
 * ```
 *
 * @module
 */

export * from "./src/oci/digest.ts";
export * from "./src/oci/reference.ts";
export * from "./src/transport/request_body.ts";
export * from "./src/transport/errors.ts";
export * from "./src/transport/challenge.ts";
export * from "./src/transport/credentials.ts";
export * from "./src/transport/auth.ts";
export * from "./src/transport/retry.ts";
export * from "./src/transport/network_errors.ts";
export * from "./src/transport/transient.ts";
export * from "./src/transport/redirects.ts";
export * from "./src/transport/timeouts.ts";
export * from "./src/transport/http_transport.ts";
export * from "./src/transport/proxy.ts";
export * from "./src/transport/opener.ts";
export * from "./src/oci/media_types.ts";
export * from "./src/oci/platform.ts";
export * from "./src/oci/manifest.ts";
export * from "./src/oci/parse_manifest.ts";
export * from "./src/store/remote/progress.ts";
export * from "./src/store/remote/blobs.ts";
export * from "./src/store/remote/manifests.ts";
export * from "./src/store/remote/tags.ts";
export {
  type BlobReader,
  type BlobUpload,
  type ByteRange,
  type CallOptions,
  type Deleter,
  fetchBytes,
  type Ingester,
  isManifestOrIndex,
  isMounter,
  type Mounter,
  type PushOptions,
  type ReferrerLister,
  type ReferrersOptions,
  type Store,
  type StoreOptions,
  type TagLister,
  type Uploader,
  UploadLimitError,
} from "./src/store/store.ts";
export * from "./src/store/remote_store.ts";
export * from "./src/store/layout_store.ts";
export * from "./src/store/memory_store.ts";
export * from "./src/image/copy.ts";
export * from "./src/image/resolve.ts";
export * from "./src/layer/compression.ts";
export { MAX_ZSTD_WINDOW_LOG, ZstdFormatError } from "./src/layer/zstd.ts";
export * from "./src/layer/create_layer.ts";
export * from "./src/layer/extract_layer.ts";
export * from "./src/image/push.ts";
export * from "./src/image/pull.ts";
export * from "./src/server/mod.ts";
