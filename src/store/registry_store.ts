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
import type { Store, StoreOptions } from "./store.ts";

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
  /** The store's options, with the call's signal added to the store's own. */
  const withCall = (call: StoreOptions = {}) => {
    const signals = [options.signal, call.signal].filter((s) =>
      s !== undefined
    );
    return {
      ...options,
      signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
    };
  };
  return {
    name: `${ref.registry}/${ref.repository}`,
    registry: ref.registry,
    repository: ref.repository,
    hasBlob(descriptor, call) {
      return blobExists(repository, descriptor.digest, withCall(call));
    },
    fetchBlob(descriptor, call) {
      return fetchBlob(repository, descriptor.digest, {
        ...withCall(call),
        size: descriptor.size,
      });
    },
    async pushBlob(descriptor, source, pushOptions = {}) {
      await uploadBlob(repository, source, descriptor.digest, {
        ...withCall(pushOptions),
        force: true,
        mountFrom: pushOptions.mountFrom,
        // copyBlobs starts a failed copy again, source included.
        attempts: 1,
      });
    },
    fetchManifest(reference, call) {
      const target = isDigest(reference)
        ? withDigest(repository, reference)
        : withTag(repository, reference);
      return fetchManifest(target, withCall(call));
    },
    async pushManifest(bytes, descriptor, tag, call) {
      await putManifestBytes(
        repository,
        bytes,
        descriptor,
        tag ?? descriptor.digest,
        withCall(call),
      );
    },
  };
}
