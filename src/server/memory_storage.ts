/**
 * Registry storage in memory: the default for tests and the demo.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { concatBytes } from "../io/bytes.ts";
import {
  type RegistryStorage,
  type StoredManifest,
  UploadLimitError,
  type UploadSession,
} from "./storage.ts";

/** Options of {@linkcode memoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * Most bytes that unfinished uploads may hold together; an append beyond it is refused with
   * an `UploadLimitError` (at once when the client declared its length).
   * @default {1073741824}
   */
  readonly maxUploadBytes?: number;
}

/**
 * Keeps blobs, uploads and manifests in memory.
 *
 * @param options The room unfinished uploads may take.
 * @returns The storage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryStorage } from "./memory_storage.ts";
 * const storage = memoryStorage({ maxUploadBytes: 4 });
 * assert.equal(await storage.listTags("app"), undefined);
 * const upload = await storage.startUpload();
 * await assert.rejects(upload.append(new Response("hello").body!), /4 bytes/);
 * assert.equal(upload.size, 0);
 * ```
 */
export function memoryStorage(
  options: MemoryStorageOptions = {},
): RegistryStorage {
  const maxUploadBytes = options.maxUploadBytes ?? 1 << 30;
  /** Bytes held by unfinished uploads, all together. */
  let held = 0;
  const blobs = new Map<string, Uint8Array>();
  const manifests = new Map<string, Map<string, StoredManifest>>();
  const tags = new Map<string, Map<string, string>>();
  const links = new Map<string, Set<string>>();
  const link = (repository: string, digest: string) => {
    let set = links.get(repository);
    if (set === undefined) links.set(repository, set = new Set());
    set.add(digest);
  };

  return {
    blobSize(repository, digest) {
      if (repository !== undefined && !links.get(repository)?.has(digest)) {
        return Promise.resolve(undefined);
      }
      return Promise.resolve(blobs.get(digest)?.byteLength);
    },
    linkBlob(repository, digest) {
      link(repository, digest);
      return Promise.resolve();
    },
    readBlob(digest, range) {
      const bytes = blobs.get(digest);
      if (bytes === undefined) {
        return Promise.reject(new Deno.errors.NotFound(digest));
      }
      const slice = range ? bytes.subarray(range.start, range.end + 1) : bytes;
      return Promise.resolve(
        new ReadableStream({
          start(controller) {
            // Hand out 1 MiB views, so that consumers see stream-sized chunks.
            for (let i = 0; i < slice.byteLength; i += 1 << 20) {
              controller.enqueue(slice.subarray(i, i + (1 << 20)));
            }
            controller.close();
          },
        }),
      );
    },
    deleteBlob(repository, digest) {
      return Promise.resolve(links.get(repository)?.delete(digest) ?? false);
    },
    startUpload() {
      const chunks: Uint8Array[] = [];
      let hash = createHash("sha256");
      let size = 0;
      /** Gives this session's bytes back to the shared room. */
      const release = () => {
        held -= size;
        size = 0;
        chunks.length = 0;
      };
      const session: UploadSession = {
        get size() {
          return size;
        },
        async append(stream, declared) {
          if (declared !== undefined) room(declared);
          const before = { size, chunks: chunks.length, hash: hash.copy() };
          try {
            for await (const chunk of stream) {
              room(chunk.byteLength);
              chunks.push(chunk);
              hash.update(chunk);
              size += chunk.byteLength;
              held += chunk.byteLength;
            }
          } catch (error) {
            held -= size - before.size;
            size = before.size;
            chunks.length = before.chunks;
            hash = before.hash;
            throw error;
          }
          return size;
        },
        digest() {
          return `sha256:${hash.copy().digest("hex")}`;
        },
        commit(repository, digest) {
          if (!blobs.has(digest)) blobs.set(digest, concatBytes(chunks));
          link(repository, digest);
          release();
          return Promise.resolve();
        },
        cancel() {
          release();
          return Promise.resolve();
        },
      };
      /** Refuses `more` bytes that this session or all together have no room for. */
      function room(more: number): void {
        if (size + more > maxUploadBytes) {
          throw new UploadLimitError("upload", maxUploadBytes);
        }
        if (held + more > maxUploadBytes) {
          throw new UploadLimitError("total", maxUploadBytes);
        }
      }
      return Promise.resolve(session);
    },
    getManifest(repository, reference) {
      const digest = tags.get(repository)?.get(reference) ?? reference;
      return Promise.resolve(manifests.get(repository)?.get(digest));
    },
    putManifest(repository, manifest, tag) {
      let byDigest = manifests.get(repository);
      if (byDigest === undefined) {
        manifests.set(repository, byDigest = new Map());
      }
      byDigest.set(manifest.digest, manifest);
      if (tag !== undefined) {
        let names = tags.get(repository);
        if (names === undefined) tags.set(repository, names = new Map());
        names.set(tag, manifest.digest);
      }
      return Promise.resolve();
    },
    deleteManifest(repository, reference) {
      const names = tags.get(repository);
      if (names?.has(reference)) {
        names.delete(reference);
        return Promise.resolve(true);
      }
      const removed = manifests.get(repository)?.delete(reference) ?? false;
      if (removed && names) {
        for (const [tag, digest] of names) {
          if (digest === reference) names.delete(tag);
        }
      }
      return Promise.resolve(removed);
    },
    listTags(repository) {
      if (!manifests.has(repository)) return Promise.resolve(undefined);
      return Promise.resolve([...(tags.get(repository)?.keys() ?? [])].sort());
    },
    listManifests(repository) {
      return Promise.resolve([...(manifests.get(repository)?.values() ?? [])]);
    },
  };
}
