/**
 * Uploads in pieces ({@linkcode BlobUpload}) for the stores: in memory, capped by the bytes
 * unfinished uploads may hold together, and into a file opened only while a piece is appended.
 * Both hash (sha256) as bytes arrive and undo a failed append.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { concatBytes } from "../io/bytes.ts";
import { syncDirectory, writeStreamToFile } from "../io/files.ts";
import { DigestMismatchError } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import {
  type BlobUpload,
  type CallOptions,
  UploadLimitError,
} from "./store.ts";

/** The media type of a blob stored from an upload (a registry's blobs carry none). */
export const UPLOADED_MEDIA_TYPE = "application/octet-stream";

/** The room unfinished uploads of one store share, in bytes. */
export interface UploadRoom {
  /** The most bytes all unfinished uploads may hold together. */
  readonly limit: number;
  /** The bytes they hold now. */
  held: number;
}

/**
 * An upload kept in memory, within `room`. `store` takes the bytes once their digest is
 * checked.
 *
 * @param room The room shared by the store's uploads (changed as bytes come and go).
 * @param store Keeps the whole blob.
 * @returns The upload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryUpload } from "./uploads.ts";
 * import { digestOf } from "../oci/digest.ts";
 * let kept: Uint8Array | undefined;
 * const upload = memoryUpload({ limit: 4, held: 0 }, (_digest, bytes) => { kept = bytes; });
 * await assert.rejects(upload.append(new Response("hello").body!), /4 bytes/);
 * assert.equal(await upload.append(new Response("hey").body!), 3);
 * await upload.commit(digestOf("hey"));
 * assert.equal(new TextDecoder().decode(kept), "hey");
 * ```
 */
export function memoryUpload(
  room: UploadRoom,
  store: (digest: string, bytes: Uint8Array) => void,
): BlobUpload {
  const chunks: Uint8Array[] = [];
  let hash = createHash("sha256");
  let size = 0;
  const release = () => {
    room.held -= size;
    size = 0;
    chunks.length = 0;
  };
  /** Refuses `more` bytes that this upload or all together have no room for. */
  const make = (more: number) => {
    if (size + more > room.limit) {
      throw new UploadLimitError("upload", room.limit);
    }
    if (room.held + more > room.limit) {
      throw new UploadLimitError("total", room.limit);
    }
  };
  return {
    get size() {
      return size;
    },
    async append(stream, declared) {
      if (declared !== undefined) make(declared);
      const before = { size, chunks: chunks.length, hash: hash.copy() };
      try {
        for await (const chunk of stream) {
          make(chunk.byteLength);
          chunks.push(chunk);
          hash.update(chunk);
          size += chunk.byteLength;
          room.held += chunk.byteLength;
        }
      } catch (error) {
        room.held -= size - before.size;
        size = before.size;
        chunks.length = before.chunks;
        hash = before.hash;
        throw error;
      }
      return size;
    },
    digest: () => digestOfHash(hash),
    commit(digest) {
      try {
        const descriptor = checked(digest, hash, size, "an upload in memory");
        store(digest, concatBytes(chunks));
        release();
        return Promise.resolve(descriptor);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    cancel() {
      release();
      return Promise.resolve();
    },
  };
}

/**
 * An upload into a file under `dir` that is opened only while a piece is appended (unfinished
 * uploads hold no descriptor): 256 KiB reads (many uploads run at once), written while the
 * next fills, synced as the file grows and at the end. An append that fails is undone (the
 * file cut back, the hash restored). The commit renames the synced file to `blobPath(digest)`
 * and syncs that directory.
 *
 * @param dir Where unfinished uploads live (created when missing).
 * @param blobPath Where a blob of a digest lives.
 * @returns The upload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileUpload } from "./uploads.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const dir = await Deno.makeTempDir();
 * const upload = await fileUpload(`${dir}/uploads`, (digest) => `${dir}/${digest.slice(7)}`);
 * await upload.append(new Response("hel").body!);
 * await upload.append(new Response("lo").body!);
 * await upload.commit(digestOf("hello"));
 * assert.equal(await Deno.readTextFile(`${dir}/${digestOf("hello").slice(7)}`), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function fileUpload(
  dir: string,
  blobPath: (digest: string) => string,
): Promise<BlobUpload> {
  await Deno.mkdir(dir, { recursive: true });
  const temp = join(dir, crypto.randomUUID());
  await Deno.writeFile(temp, new Uint8Array(), { createNew: true });
  let hash = createHash("sha256");
  let size = 0;
  return {
    get size() {
      return size;
    },
    async append(stream) {
      const before = { size, hash: hash.copy() };
      try {
        await appendToFile(temp, size, stream, (chunk) => {
          hash.update(chunk);
          size += chunk.byteLength;
        });
      } catch (error) {
        size = before.size;
        hash = before.hash;
        await Deno.truncate(temp, before.size).catch(() => {});
        throw error;
      }
      return size;
    },
    digest: () => digestOfHash(hash),
    async commit(digest, options?: CallOptions) {
      options?.signal?.throwIfAborted();
      const descriptor = checked(digest, hash, size, temp);
      // Every append synced what it wrote before it answered.
      const path = blobPath(digest);
      const parent = join(path, "..");
      await Deno.mkdir(parent, { recursive: true });
      await Deno.rename(temp, path);
      await syncDirectory(parent);
      return descriptor;
    },
    async cancel() {
      await Deno.remove(temp).catch(() => {});
    },
  };
}

function digestOfHash(hash: Hash): string {
  return `sha256:${hash.copy().digest("hex")}`;
}

/** The descriptor of what was uploaded, when it is `digest`. */
function checked(
  digest: string,
  hash: Hash,
  size: number,
  context: string,
): Descriptor {
  const actual = digestOfHash(hash);
  if (actual !== digest) {
    throw new DigestMismatchError(digest, { digest: actual, size }, {
      context,
    });
  }
  return { mediaType: UPLOADED_MEDIA_TYPE, digest, size };
}

/**
 * Writes a stream at `offset` of a file, opened for this call only, each chunk seen by
 * `onChunk`, synced as the file grows and at the end (through a second descriptor, so writes
 * go on meanwhile).
 */
async function appendToFile(
  path: string,
  offset: number,
  stream: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  using file = await Deno.open(path, { write: true });
  using syncer = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  await writeStreamToFile(stream, file, {
    chunkSize: 256 << 10,
    sync: () => syncer.syncData(),
    onChunk,
  });
}
