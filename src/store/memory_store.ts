/**
 * A {@linkcode Store} in memory: for tests, examples, and images built before they are copied
 * anywhere.
 *
 * @module
 */
import {
  DigestMismatchError,
  digestOf,
  isVerifiedStream,
  parseDigest,
  verifyStream,
} from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { readAtMost } from "../io/bytes.ts";
import {
  type Ingester,
  isManifestOrIndex,
  type Store,
  type TagLister,
} from "./store.ts";

/**
 * A store that keeps blobs and manifests in memory, with tags in the order they were first
 * given. Reads are verified while they stream, as every store's are; pushes are checked
 * against the descriptor (unless `verified`).
 *
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
export function memoryStore(): Store & TagLister & Ingester {
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
      const stream = source.open();
      const verified = call.verified ||
        isVerifiedStream(stream, descriptor.digest, descriptor.size);
      const bytes = await read(stream, call.signal);
      if (!verified) {
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
  };
}
