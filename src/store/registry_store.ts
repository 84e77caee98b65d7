/**
 * A {@linkcode Store} over a repository on a registry.
 *
 * @module
 */
import { type ImageReference, withDigest, withTag } from "../oci/reference.ts";
import { parseDigest } from "../oci/digest.ts";
import {
  blobExists,
  fetchBlob,
  type RegistryOptions,
  uploadBlob,
} from "../registry/blobs.ts";
import { fetchManifest, putManifestBytes } from "../registry/manifests.ts";
import type { ProgressOptions } from "../registry/progress.ts";
import type { Store } from "./store.ts";

function isDigest(reference: string): boolean {
  try {
    parseDigest(reference);
    return true;
  } catch {
    return false;
  }
}

/**
 * A store over one repository of a registry: blobs by HEAD/GET/POST+PUT (mounting from another
 * repository of the same registry when told), manifests by GET/PUT.
 *
 * @param ref The repository (its tag and digest are ignored).
 * @param options Transport, signal, single-POST size, progress and log.
 * @returns The store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registryStore } from "./registry_store.ts";
 * import { parseReference } from "../oci/reference.ts";
 * const store = registryStore(parseReference("127.0.0.1:5000/app:v1"));
 * assert.equal(store.name, "127.0.0.1:5000/app");
 * ```
 */
export function registryStore(
  ref: ImageReference,
  options: RegistryOptions & ProgressOptions & { smallBlobSize?: number } = {},
): Store {
  const repository: ImageReference = {
    registry: ref.registry,
    repository: ref.repository,
    scheme: ref.scheme,
  };
  return {
    name: `${ref.registry}/${ref.repository}`,
    registry: ref.registry,
    repository: ref.repository,
    hasBlob(descriptor) {
      return blobExists(repository, descriptor.digest, options);
    },
    fetchBlob(descriptor) {
      return fetchBlob(repository, descriptor.digest, {
        ...options,
        size: descriptor.size,
      });
    },
    async pushBlob(descriptor, source, pushOptions = {}) {
      await uploadBlob(repository, source, descriptor.digest, {
        ...options,
        force: true,
        mountFrom: pushOptions.mountFrom,
        // copyBlobs starts a failed copy again, source included.
        attempts: 1,
      });
    },
    fetchManifest(reference) {
      const target = isDigest(reference)
        ? withDigest(repository, reference)
        : withTag(repository, reference);
      return fetchManifest(target, options);
    },
    async pushManifest(bytes, descriptor, tag) {
      await putManifestBytes(
        repository,
        bytes,
        descriptor,
        tag ?? descriptor.digest,
        options,
      );
    },
  };
}
