/**
 * A {@linkcode Store} in memory: for tests, examples, and images built before they are copied
 * anywhere.
 *
 * @module
 */
import {
  DigestMismatchError,
  digestOf,
  parseDigest,
  verifyStream,
} from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { readAtMost } from "../io/bytes.ts";
import {
  type BlobReader,
  type Deleter,
  type Ingester,
  isManifestOrIndex,
  type ReferrerLister,
  referrerOf,
  type Store,
  type TagLister,
  type Uploader,
} from "./store.ts";
import {
  memoryUpload,
  UPLOADED_MEDIA_TYPE,
  type UploadRoom,
} from "./uploads.ts";

/** Options of {@linkcode memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most bytes that unfinished uploads ({@linkcode Uploader.startUpload}) may hold together;
   * an append beyond it is refused with an `UploadLimitError` (at once when the sender
   * declared its length).
   * @default {1073741824}
   */
  readonly maxUploadBytes?: number;
}

/** Every capability {@linkcode memoryStore} has. */
export type MemoryStore =
  & Store
  & TagLister
  & Ingester
  & Deleter
  & ReferrerLister
  & BlobReader
  & Uploader;

/** Blob reads hand out views of this size, so that consumers see stream-sized chunks. */
const READ_CHUNK = 1 << 20;

/**
 * A store that keeps blobs and manifests in memory, with tags in the order they were first
 * given; it also deletes, lists referrers, serves blobs by digest (byte ranges too) and takes
 * uploads in pieces. Reads are verified while they stream, as every store's are; pushes are checked
 * against the descriptor (unless `verified`).
 *
 * @param options The room unfinished uploads may take.
 * @returns The store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryStore } from "./memory_store.ts";
 * import { fetchBytes } from "./store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * const descriptor = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await store.push(descriptor, bytesSource("x"));
 * assert.ok(await store.exists(descriptor));
 * assert.equal(new TextDecoder().decode(await fetchBytes(store, descriptor)), "x");
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const room: UploadRoom = {
    limit: options.maxUploadBytes ?? 1 << 30,
    held: 0,
  };
  const blobs = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  const tags = new Map<string, Descriptor>();
  const name = "memory";
  const notFound = (what: string) =>
    new Deno.errors.NotFound(`Cannot find ${what} in ${name}`);
  const read = async (
    stream: ReadableStream<Uint8Array>,
    signal: AbortSignal | undefined,
  ) => (await readAtMost(stream, Number.MAX_SAFE_INTEGER, signal))!;
  return {
    name,
    exists(descriptor, call) {
      call?.signal?.throwIfAborted();
      const blob = blobs.get(descriptor.digest);
      return Promise.resolve(
        blob !== undefined && blob.bytes.byteLength === descriptor.size,
      );
    },
    fetch(descriptor, call) {
      call?.signal?.throwIfAborted();
      const blob = blobs.get(descriptor.digest);
      if (blob === undefined) {
        return Promise.reject(notFound(`blob ${descriptor.digest}`));
      }
      return Promise.resolve(verifyStream(
        new Blob([blob.bytes as Uint8Array<ArrayBuffer>]).stream(),
        descriptor.digest,
        { size: descriptor.size, context: name, signal: call?.signal },
      ));
    },
    async push(descriptor, source, call = {}) {
      call.signal?.throwIfAborted();
      const bytes = await read(source.open(), call.signal);
      if (!call.verified) {
        const digest = digestOf(
          bytes,
          parseDigest(descriptor.digest).algorithm,
        );
        if (
          digest !== descriptor.digest || bytes.byteLength !== descriptor.size
        ) {
          throw new DigestMismatchError(descriptor.digest, {
            digest,
            size: bytes.byteLength,
          }, { context: name });
        }
      }
      if (!blobs.has(descriptor.digest)) {
        blobs.set(descriptor.digest, {
          bytes,
          mediaType: descriptor.mediaType,
        });
      }
      if (call.tag !== undefined && isManifestOrIndex(descriptor.mediaType)) {
        tags.set(call.tag, {
          mediaType: descriptor.mediaType,
          digest: descriptor.digest,
          size: descriptor.size,
        });
      }
    },
    resolve(reference, call) {
      call?.signal?.throwIfAborted();
      const tagged = tags.get(reference);
      if (tagged !== undefined) return Promise.resolve(tagged);
      const blob = blobs.get(reference);
      if (blob === undefined) {
        return Promise.reject(notFound(`"${reference}"`));
      }
      return Promise.resolve({
        mediaType: blob.mediaType,
        digest: reference,
        size: blob.bytes.byteLength,
      });
    },
    listTags(call) {
      call?.signal?.throwIfAborted();
      return Promise.resolve([...tags.keys()]);
    },
    async ingest(stream, mediaType, call) {
      call?.signal?.throwIfAborted();
      const bytes = await read(stream, call?.signal);
      const digest = digestOf(bytes);
      if (!blobs.has(digest)) blobs.set(digest, { bytes, mediaType });
      return { mediaType, digest, size: bytes.byteLength };
    },
    delete(descriptor, call) {
      call?.signal?.throwIfAborted();
      const removed = blobs.delete(descriptor.digest);
      for (const [tag, tagged] of tags) {
        if (tagged.digest === descriptor.digest) tags.delete(tag);
      }
      return Promise.resolve(removed);
    },
    untag(tag, call) {
      call?.signal?.throwIfAborted();
      return Promise.resolve(tags.delete(tag));
    },
    referrers(subject, call) {
      call?.signal?.throwIfAborted();
      const found = [];
      for (const [digest, blob] of blobs) {
        if (!isManifestOrIndex(blob.mediaType)) continue;
        const descriptor = {
          mediaType: blob.mediaType,
          digest,
          size: blob.bytes.byteLength,
        };
        const referrer = referrerOf(
          descriptor,
          blob.bytes,
          subject,
          call?.artifactType,
        );
        if (referrer !== undefined) found.push(referrer);
      }
      return Promise.resolve(found);
    },
    blobSize(digest, call) {
      call?.signal?.throwIfAborted();
      return Promise.resolve(blobs.get(digest)?.bytes.byteLength);
    },
    readBlob(digest, call) {
      call?.signal?.throwIfAborted();
      const blob = blobs.get(digest);
      if (blob === undefined) {
        return Promise.reject(notFound(`blob ${digest}`));
      }
      const range = call?.range;
      const slice = range
        ? blob.bytes.subarray(range.start, range.end + 1)
        : blob.bytes;
      return Promise.resolve(
        new ReadableStream({
          start(controller) {
            for (let i = 0; i < slice.byteLength; i += READ_CHUNK) {
              controller.enqueue(slice.subarray(i, i + READ_CHUNK));
            }
            controller.close();
          },
        }),
      );
    },
    startUpload(call) {
      call?.signal?.throwIfAborted();
      return Promise.resolve(memoryUpload(room, (digest, bytes) => {
        if (!blobs.has(digest)) {
          blobs.set(digest, { bytes, mediaType: UPLOADED_MEDIA_TYPE });
        }
      }));
    },
  };
}
