/**
 * Blobs by digest over any store: read one to a file (verified while it streams, written to a
 * temporary file and renamed into place) or to a stream, and store a file as a blob.
 *
 * @module
 */
import { digestOfFile } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import {
  createTemporary,
  syncDirectory,
  writeStreamToFile,
} from "../io/files.ts";
import { type CallOptions, hasBlobSize, type Store } from "../store/store.ts";
import { fileSource } from "../transport/request_body.ts";
import { dirname } from "node:path";

/**
 * The descriptor of a blob a store holds, found by its digest alone (its size asked of the
 * store: a registry's HEAD, a layout's or memory store's own record), for reading it with
 * {@linkcode downloadBlob} or `store.fetch` (which verify digest and size).
 *
 * @param store Any store that tells blob sizes (registries, layouts, memory).
 * @param digest The blob's digest.
 * @param options A signal.
 * @returns Its descriptor (`application/octet-stream`), or undefined when the store lacks it.
 * @throws {TypeError} When the store cannot tell a blob's size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findBlob } from "./blob.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * await store.push({ mediaType: "text/plain", digest: digestOf("x"), size: 1 }, bytesSource("x"));
 * assert.equal((await findBlob(store, digestOf("x")))?.size, 1);
 * assert.equal(await findBlob(store, digestOf("y")), undefined);
 * ```
 */
export async function findBlob(
  store: Store,
  digest: string,
  options: CallOptions = {},
): Promise<Descriptor | undefined> {
  if (!hasBlobSize(store)) {
    throw new TypeError(
      `Cannot find blob ${digest} in ${store.name}: it does not tell blob sizes`,
    );
  }
  const size = await store.blobSize(digest, options);
  if (size === undefined) return undefined;
  return { mediaType: "application/octet-stream", digest, size };
}

/**
 * Writes a blob of a store to `path`: the bytes stream into a temporary file beside it while
 * they are hashed, and only bytes that match the descriptor (digest and size) are renamed to
 * `path`; on any failure the temporary file is removed and `path` is as it was.
 *
 * @param store The store.
 * @param descriptor The blob.
 * @param path Where to write it.
 * @param options A signal.
 * @returns The number of bytes written.
 * @throws {DigestMismatchError} When the store's bytes are not the blob's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { downloadBlob } from "./blob.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const store = memoryStore();
 * const descriptor = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await store.push(descriptor, bytesSource("x"));
 * const dir = await Deno.makeTempDir();
 * await downloadBlob(store, descriptor, `${dir}/x`);
 * assert.equal(await Deno.readTextFile(`${dir}/x`), "x");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function downloadBlob(
  store: Store,
  descriptor: Descriptor,
  path: string,
  options: CallOptions = {},
): Promise<number> {
  const stream = await store.fetch(descriptor, options);
  const { temp, file, lock } = await createTemporary(path);
  try {
    // Two reused 1 MiB buffers, read into straight from the verified byte stream.
    const size = await writeStreamToFile(stream, file, {
      size: descriptor.size,
      sync: () => file.syncData(),
      signal: options.signal,
    });
    file.close();
    await Deno.rename(temp, path);
    await syncDirectory(dirname(path));
    return size;
  } catch (error) {
    try {
      file.close();
    } catch {
      // Already closed.
    }
    await Deno.remove(temp).catch(() => {});
    throw error;
  } finally {
    lock.close();
  }
}

/**
 * Stores a file as a blob: hashed first, then pushed unless the store has it.
 *
 * @param store The store.
 * @param path The file.
 * @param options Its media type (default `application/octet-stream`) and a signal.
 * @returns Its descriptor, and whether its bytes were sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uploadFile } from "./blob.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "x");
 * const store = memoryStore();
 * const { descriptor } = await uploadFile(store, path);
 * assert.equal(descriptor.digest, digestOf("x"));
 * assert.equal((await uploadFile(store, path)).sent, false);
 * await Deno.remove(path);
 * ```
 */
export async function uploadFile(
  store: Store,
  path: string,
  options: CallOptions & { mediaType?: string } = {},
): Promise<{ descriptor: Descriptor; sent: boolean }> {
  const { digest, size } = await digestOfFile(path);
  const descriptor = {
    mediaType: options.mediaType ?? "application/octet-stream",
    digest,
    size,
  };
  if (await store.exists(descriptor, options)) {
    return { descriptor, sent: false };
  }
  await store.push(descriptor, await fileSource(path), options);
  return { descriptor, sent: true };
}
