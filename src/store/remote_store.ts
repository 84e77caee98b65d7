/**
 * A {@linkcode Store} over a repository on a registry.
 *
 * @module
 */
import { type ImageReference, withDigest, withTag } from "../oci/reference.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { parseDigest } from "../oci/digest.ts";
import { blobExists, fetchBlob, type RegistryOptions } from "./remote/blobs.ts";
import { fetchManifest } from "./remote/manifests.ts";
import { putManifest, uploadBlob } from "./remote/upload.ts";
import type { FetchedManifest } from "./store.ts";
import { listTags } from "./remote/tags.ts";
import { deleteBlob, deleteManifest, deleteTag } from "./remote/delete.ts";
import { blobSize } from "./remote/blob_size.ts";
import {
  addToReferrersIndex,
  fetchReferrers,
  readReferrersIndex,
  removeFromReferrersIndex,
} from "./remote/referrers.ts";
import { RegistryError } from "../transport/errors.ts";
import type { ProgressOptions } from "./remote/progress.ts";
import { readAtMost } from "../io/bytes.ts";
import { bytesSource, type Transport } from "../transport/request_body.ts";
import { MAX_MANIFEST_SIZE } from "../oci/parse_manifest.ts";
import {
  type BlobSizer,
  type CallOptions,
  type Deleter,
  isManifestOrIndex,
  type Mounter,
  type ReferrerLister,
  referrerOf,
  type Store,
  type TagLister,
} from "./store.ts";

/** The subject digest a manifest's bytes name, if any. */
function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const digest = JSON.parse(new TextDecoder().decode(bytes))?.subject?.digest;
    return typeof digest === "string" ? digest : undefined;
  } catch {
    return undefined;
  }
}

function isDigest(reference: string): boolean {
  try {
    parseDigest(reference);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@linkcode remoteStore}. */
export interface RemoteStoreOptions extends RegistryOptions, ProgressOptions {
  /**
   * The opener requests go through (fetch + auth + retry), or any function with the shape of
   * `fetch`, e.g. `createRegistry()` for the embedded registry without a socket; the same as
   * `transport`, which it wins over.
   * @default {defaultOpener()}
   */
  readonly opener?: Transport;
  /**
   * Blobs up to this size go in a single POST `?digest=`. 0 turns it off.
   * @default {0}
   */
  readonly smallBlobSize?: number;
}

/** Every capability of {@linkcode remoteStore}. */
export type RemoteStore =
  & Store
  & BlobSizer
  & Mounter
  & TagLister
  & Deleter
  & ReferrerLister;

/** The repository of every remote store, for mounts between them. */
const REPOSITORIES = new WeakMap<Store, ImageReference>();

/** How many manifests a remote store keeps between `resolve` and `fetch`. */
const MANIFEST_CACHE_SIZE = 32;

/**
 * A store over one repository of a registry: blobs by HEAD/GET/POST+PUT (mounting from another
 * repository of the same registry), manifests by GET/PUT, tags by the tags list.
 *
 * `resolve` fetches the manifest (the registry answers a GET with its media type and digest)
 * and keeps the bytes, so that reading it after costs no second request.
 *
 * It deletes (manifests by digest, tags where the registry allows, blobs) and lists referrers:
 * by the referrers API, or on a registry without it (distribution 2.8) by the fallback tag
 * `sha256-<hex>`, which `push` of a manifest with a `subject` updates there (read, add,
 * write: concurrent writers race, as the spec says; see `remote/referrers.ts`), and `delete`
 * of such a manifest updates too (read, remove, write; the same race).
 *
 * @param ref The repository (its tag and digest are ignored).
 * @param storeOptions Opener, signal, single-POST size, progress and log.
 * @returns The store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { remoteStore } from "./remote_store.ts";
 * import { parseReference } from "../oci/reference.ts";
 * import { createRegistry } from "../server/mod.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = remoteStore(parseReference("127.0.0.1:5000/app:v1"), { opener: createRegistry() });
 * assert.equal(store.name, "127.0.0.1:5000/app");
 * const descriptor = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await store.push(descriptor, bytesSource("x"));
 * assert.ok(await store.exists(descriptor));
 * ```
 */
export function remoteStore(
  ref: ImageReference,
  storeOptions: RemoteStoreOptions = {},
): RemoteStore {
  const options: RegistryOptions & ProgressOptions & {
    smallBlobSize?: number;
  } = {
    ...storeOptions,
    transport: storeOptions.opener ?? storeOptions.transport,
  };
  const repository: ImageReference = {
    registry: ref.registry,
    repository: ref.repository,
    scheme: ref.scheme,
  };
  /** The store's options, with the call's signal added to the store's own. */
  const withCall = (call: CallOptions = {}) => {
    const signals = [options.signal, call.signal].filter((s) =>
      s !== undefined
    );
    return {
      ...options,
      signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
    };
  };
  const manifests = new Map<string, FetchedManifest>();
  const remember = (fetched: FetchedManifest) => {
    manifests.delete(fetched.descriptor.digest);
    manifests.set(fetched.descriptor.digest, fetched);
    while (manifests.size > MANIFEST_CACHE_SIZE) {
      manifests.delete(manifests.keys().next().value!);
    }
    return fetched;
  };
  const manifestOf = async (reference: string, call?: CallOptions) => {
    if (isDigest(reference)) {
      const cached = manifests.get(reference);
      if (cached !== undefined) return cached;
    }
    const target = isDigest(reference)
      ? withDigest(repository, reference)
      : withTag(repository, reference);
    return remember(await fetchManifest(target, withCall(call)));
  };
  /** Whether the registry has the referrers API; undefined until asked. */
  let referrersApi: boolean | undefined;
  const referrersOf = async (
    subject: string,
    call: CallOptions & { artifactType?: string } = {},
  ) => {
    if (referrersApi !== false) {
      const found = await fetchReferrers(repository, subject, {
        ...withCall(call),
        artifactType: call.artifactType,
      });
      referrersApi = found !== undefined;
      if (found !== undefined) return found;
    }
    return await readReferrersIndex(repository, subject, {
      ...withCall(call),
      artifactType: call.artifactType,
    });
  };
  /** On a registry without the referrers API, enters a referrer in its subject's fallback index. */
  const indexReferrer = async (
    descriptor: Descriptor,
    bytes: Uint8Array,
    call: CallOptions,
  ) => {
    const subject = subjectOf(bytes);
    if (subject === undefined) return;
    if (referrersApi === undefined) await referrersOf(subject, call);
    if (referrersApi) return;
    const referrer = referrerOf(descriptor, bytes, subject);
    if (referrer === undefined) return;
    await addToReferrersIndex(repository, subject, referrer, withCall(call));
  };
  /** The bytes of a manifest about to be deleted; undefined when the registry has none. */
  const bytesBeforeDelete = async (digest: string, call: CallOptions) => {
    try {
      return (await manifestOf(digest, call)).bytes;
    } catch (error) {
      if (error instanceof RegistryError && error.status === 404) {
        return undefined;
      }
      throw error;
    }
  };
  /** On a registry without the referrers API, drops a deleted referrer from its subject's index. */
  const unindexReferrer = async (
    digest: string,
    bytes: Uint8Array,
    call: CallOptions,
  ) => {
    const subject = subjectOf(bytes);
    if (subject === undefined) return;
    if (referrersApi === undefined) await referrersOf(subject, call);
    if (referrersApi) return;
    await removeFromReferrersIndex(repository, subject, digest, withCall(call));
  };
  const store: RemoteStore = {
    name: `${ref.registry}/${ref.repository}`,
    exists(descriptor, call) {
      return blobExists(repository, descriptor.digest, withCall(call));
    },
    blobSize(digest, call) {
      return blobSize(repository, digest, withCall(call));
    },
    async fetch(descriptor, call) {
      if (isManifestOrIndex(descriptor.mediaType)) {
        const { bytes } = await manifestOf(descriptor.digest, call);
        return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
      }
      return fetchBlob(repository, descriptor.digest, {
        ...withCall(call),
        size: descriptor.size,
      });
    },
    async push(descriptor, source, call = {}) {
      if (isManifestOrIndex(descriptor.mediaType)) {
        const bytes = await readAtMost(source.open(), MAX_MANIFEST_SIZE);
        if (bytes === undefined) {
          throw new RangeError(
            `Cannot push manifest ${descriptor.digest} to ${store.name}: larger than ${MAX_MANIFEST_SIZE} bytes`,
          );
        }
        await putManifest(
          repository,
          bytes,
          descriptor,
          call.tag ?? descriptor.digest,
          withCall(call),
        );
        await indexReferrer(descriptor, bytes, call);
        return;
      }
      // One upload session: copyBlobs starts a failed copy again, source included.
      await uploadBlob(repository, source, descriptor.digest, withCall(call));
    },
    async resolve(reference, call) {
      return (await manifestOf(reference, call)).descriptor;
    },
    canMount(from) {
      const other = REPOSITORIES.get(from);
      return other !== undefined && other.registry === repository.registry &&
        other.repository !== repository.repository;
    },
    async mount(descriptor, from, call = {}) {
      const other = REPOSITORIES.get(from);
      if (other === undefined || !store.canMount(from)) return false;
      // uploadBlob answers false when the registry mounted the blob.
      return !(await uploadBlob(
        repository,
        call.fallback ?? bytesSource(new Uint8Array()),
        descriptor.digest,
        { ...withCall(call), mountFrom: other.repository },
      ));
    },
    async delete(descriptor, call) {
      if (isManifestOrIndex(descriptor.mediaType)) {
        // Its bytes first: a referrer's subject names the fallback index to update after.
        const bytes = await bytesBeforeDelete(descriptor.digest, call ?? {});
        manifests.delete(descriptor.digest);
        const deleted = await deleteManifest(
          repository,
          descriptor.digest,
          withCall(call),
        );
        if (deleted && bytes !== undefined) {
          await unindexReferrer(descriptor.digest, bytes, call ?? {});
        }
        return deleted;
      }
      return await deleteBlob(repository, descriptor.digest, withCall(call));
    },
    untag(tag, call) {
      return deleteTag(repository, tag, withCall(call));
    },
    referrers(subject, call) {
      return referrersOf(subject, call);
    },
    listTags(call = {}) {
      return listTags(repository, {
        ...withCall(call),
        pageSize: call.pageSize,
      });
    },
  };
  REPOSITORIES.set(store, repository);
  return store;
}
