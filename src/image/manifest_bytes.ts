/**
 * Manifests as bytes, over any store: the exact bytes (and digest) a reference names, or the
 * child of an index for a platform; and a manifest put from a file, checked first.
 *
 * @module
 */
import { digestOf } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { parseManifest } from "../oci/parse_manifest.ts";
import type { Platform } from "../oci/platform.ts";
import {
  type CallOptions,
  type FetchedManifest,
  fetchManifest,
  type Store,
} from "../store/store.ts";
import { bytesSource } from "../transport/request_body.ts";
import { resolveImage } from "./resolve.ts";

/** Options of {@linkcode readManifestBytes}. */
export interface ReadManifestBytesOptions extends CallOptions {
  /** Pick this platform's manifest out of an index (a manifest is returned as it is). */
  readonly platform?: Platform;
}

/**
 * The manifest or index a reference names, as the store serves it: its exact bytes, media type
 * and digest; with `platform`, the manifest an index holds for it.
 *
 * @param store The store.
 * @param reference A tag or digest.
 * @param options Platform and a signal.
 * @returns The descriptor, bytes and document.
 * @throws {PlatformNotFoundError} When an index lacks the platform.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readManifestBytes } from "./manifest_bytes.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * const { descriptor } = await pushArtifact(store, [], { artifactType: "application/x.a", tag: "v1" });
 * assert.equal((await readManifestBytes(store, "v1")).descriptor.digest, descriptor.digest);
 * ```
 */
export async function readManifestBytes(
  store: Store,
  reference: string,
  options: ReadManifestBytesOptions = {},
): Promise<FetchedManifest> {
  if (options.platform === undefined) {
    return await fetchManifest(store, reference, options);
  }
  const { manifest } = await resolveImage(store, reference, {
    platform: options.platform,
    signal: options.signal,
  });
  return manifest;
}

/**
 * Stores a manifest or index from its bytes, under a tag or by its digest: checked by
 * `parseManifest` first (the media type is the document's `mediaType`), and, when `reference`
 * is a digest, refused unless the bytes have it. What it points to must be in the store
 * already (a registry refuses it otherwise).
 *
 * @param store The store.
 * @param reference The tag, or the bytes' digest.
 * @param bytes The manifest.
 * @param options A signal.
 * @returns The descriptor stored.
 * @throws {ManifestError} When the bytes are no manifest or index.
 * @throws {RangeError} When `reference` is a digest the bytes do not have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { putManifestBytes, readManifestBytes } from "./manifest_bytes.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * await pushArtifact(store, [], { artifactType: "application/x.a", tag: "v1" });
 * const { bytes } = await readManifestBytes(store, "v1");
 * const descriptor = await putManifestBytes(store, "v2", bytes);
 * assert.equal((await store.resolve("v2")).digest, descriptor.digest);
 * assert.throws(() => putManifestBytes(store, "v3", new TextEncoder().encode("{}")), /mediaType|content type/);
 * ```
 */
export function putManifestBytes(
  store: Store,
  reference: string,
  bytes: Uint8Array,
  options: CallOptions = {},
): Promise<Descriptor> {
  const { mediaType } = parseManifest(bytes, undefined, {
    context: `Cannot put the manifest to ${store.name}:${reference}`,
  });
  const digest = digestOf(bytes);
  const byDigest = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(
    reference,
  );
  if (byDigest && reference !== digest) {
    throw new RangeError(
      `Cannot put the manifest to ${store.name}@${reference}: its bytes have the digest ${digest}`,
    );
  }
  const descriptor = { mediaType, digest, size: bytes.byteLength };
  return store.push(descriptor, bytesSource(bytes), {
    tag: byDigest ? undefined : reference,
    signal: options.signal,
  }).then(() => descriptor);
}
