/**
 * File helpers for everything that writes to disk: a stat that answers undefined for missing
 * files, locked temporaries and the removal of abandoned ones, streamed and atomic writes
 * (temporary file beside the target, synced, then renamed), and directory syncs.
 *
 * @module
 */

import { createBufferFiller } from "./bytes.ts";

/**
 * A random suffix for temporary names.
 *
 * @returns Two random 32-bit numbers joined by a dash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomSuffix } from "./files.ts";
 * assert.match(randomSuffix(), /^\d+-\d+$/);
 * ```
 */
export function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(2)).join("-");
}

/**
 * Stats a path, following links.
 *
 * @param path The path.
 * @returns Its info, or undefined when it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statOrUndefined } from "./files.ts";
 * assert.equal(await statOrUndefined("/no/such/file"), undefined);
 * ```
 */
export async function statOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Stats a path without following a final symlink (the link itself is what is described).
 *
 * @param path The path.
 * @returns Its info, or undefined when it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstatOrUndefined } from "./files.ts";
 * assert.equal(await lstatOrUndefined("/no/such/file"), undefined);
 * ```
 */
export async function lstatOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Makes the names in a directory durable: after a rename into it, the directory's own fsync is
 * what makes the new name survive a crash or power loss (POSIX leaves it to the application;
 * ext4, XFS and btrfs alike). Does nothing on Windows, where a directory cannot be opened.
 *
 * @param dir The directory.
 *
 * @example
 * ```ts
 * import { syncDirectory } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/file`, "x");
 * await syncDirectory(dir);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

/**
 * Writes a file atomically and durably: readers see the old content or the new, never a part,
 * and after a crash the file holds one or the other, never nothing. The bytes go to a
 * temporary file beside it, which is synced, then renamed over it, then the directory is
 * synced so that the new name lasts too.
 *
 * @param path The file.
 * @param bytes Its new content.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new TextEncoder().encode("new"));
 * assert.equal(await Deno.readTextFile(path), "new");
 * await Deno.remove(path);
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  const { temp, file, lock } = await createTemporary(path);
  try {
    for (let offset = 0; offset < bytes.length;) {
      offset += await file.write(bytes.subarray(offset));
    }
    // Synced before the rename: else a crash can leave the name on an empty file.
    await file.syncData();
    file.close();
    await Deno.rename(temp, path);
    await syncDirectory(dirnameOf(path) || "/");
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

/** A temporary file being written, see {@linkcode createTemporary}. */
export interface Temporary {
  /** Its path: the target's path with `.tmp-<random>` appended. */
  readonly temp: string;
  /** Open for writing. */
  readonly file: Deno.FsFile;
  /**
   * A second descriptor holding an exclusive lock on the file: close it after the rename (or
   * the removal). It can also `syncData()` the file, which works per file, not per descriptor.
   */
  readonly lock: Deno.FsFile;
}

const TEMPORARY_NAME_REGEXP = /(?:\.tmp-\d+-\d+|^\.oci-tmp-\d+-\d+)$/;

/** Options of {@linkcode createTemporary}. */
export interface CreateTemporaryOptions {
  /**
   * Name it `.oci-tmp-<random>` in the target's directory instead of `<target>.tmp-<random>`
   * (for trees extracted from layers, where a visible name could clash with an entry's).
   */
  readonly hidden?: boolean;
  /** Permission bits it is created with (before the umask). */
  readonly mode?: number;
}

function dirnameOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? (slash === 0 ? "" : ".") : path.slice(0, slash);
}

/**
 * Creates a temporary file beside `path` and locks it for as long as the writer lives, so that
 * {@linkcode removeAbandonedTemporaries} can tell a live writer's file from one left by a
 * process that was killed (the kernel drops a dead process's locks).
 *
 * @param path The file the temporary one will be renamed to.
 * @param options A hidden name, and the mode.
 * @returns The temporary path, a descriptor to write, and the lock to close after the rename.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTemporary } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const { temp, file, lock } = await createTemporary(`${dir}/blob`);
 * await file.write(new TextEncoder().encode("x"));
 * file.close();
 * await Deno.rename(temp, `${dir}/blob`);
 * lock.close();
 * assert.equal(await Deno.readTextFile(`${dir}/blob`), "x");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function createTemporary(
  path: string,
  options: CreateTemporaryOptions = {},
): Promise<Temporary> {
  for (;;) {
    const temp = options.hidden
      ? `${dirnameOf(path)}/.oci-tmp-${randomSuffix()}`
      : `${path}.tmp-${randomSuffix()}`;
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
    });
    const lock = await Deno.open(temp, { read: true });
    await lock.lock(true);
    // A cleaner may have taken the file for abandoned between its creation and the lock: keep
    // it only if it is still there under its name.
    const still = await statOrUndefined(temp);
    if (still !== undefined && still.ino === (await lock.stat()).ino) {
      return { temp, file, lock };
    }
    file.close();
    lock.close();
  }
}

/**
 * Removes the temporary files (`*.tmp-<random>`) of a directory that no live writer holds:
 * what a killed process (SIGKILL, power loss) left behind. Files being written by this or any
 * other process are locked and kept.
 *
 * @param dir The directory.
 * @returns The paths removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeAbandonedTemporaries } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/blob.tmp-1-2`, "half");
 * assert.deepEqual(await removeAbandonedTemporaries(dir), [`${dir}/blob.tmp-1-2`]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function removeAbandonedTemporaries(
  dir: string,
): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !TEMPORARY_NAME_REGEXP.test(entry.name)) continue;
    const path = `${dir}/${entry.name}`;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      continue; // renamed or removed meanwhile
    }
    try {
      if (await file.tryLock(true)) {
        await Deno.remove(path).catch(() => {});
        removed.push(path);
      }
    } finally {
      file.close();
    }
  }
  return removed;
}

/** Writes of streams to files move this much at a time, after a first smaller read. */
const CHUNK_SIZE = 1 << 20;
const FIRST_CHUNK_SIZE = 64 << 10;

/** A blob being written is synced each time this much more of it was written. */
const SYNC_EVERY = 64 << 20;

/** Options of {@linkcode writeStreamToFile}. */
export interface WriteStreamOptions {
  /** The size the stream must have: another is a `RangeError` at the end. */
  readonly size?: number;
  /**
   * Syncs the file, called every 64 MiB and at the end; through another descriptor, writes go
   * on meanwhile (fsync works per file). Without it nothing is synced.
   */
  readonly sync?: () => Promise<void>;
  /** Sees each chunk before it is written (to hash it, say). */
  readonly onChunk?: (chunk: Uint8Array) => void;
  /**
   * Told about each of the stream's chunks once it is copied into a buffer (not for a byte
   * stream, which is read into them): a caller that owns them may free their memory then.
   */
  readonly onConsumed?: (chunk: Uint8Array) => void;
  /**
   * Size of the two buffers once the stream proved larger than a first 64 KiB read: a server
   * with many uploads at once may want less memory per upload.
   * @default {1048576}
   */
  readonly chunkSize?: number;
  /**
   * Stops the write: the stream is cancelled and the promise rejects with the reason (once no
   * write or sync is running).
   */
  readonly signal?: AbortSignal;
}

/**
 * Writes a stream to a file through two reused 1 MiB buffers, one being written while the next
 * fills: a byte stream is read straight into them (BYOB), another stream's chunks are copied
 * in (Deno's streams hand out 64 KiB chunks, which cost about 1 s per GiB downstream). Syncing
 * as the file grows leaves little to flush at the end (1 GiB at once took 0.5 s). Leaves the
 * file open; a failure (or an abort of `options.signal`) cancels the stream and rejects once
 * no write or sync is running.
 *
 * @param stream The bytes.
 * @param file Where they go, from its current position.
 * @param options Expected size, sync, and a look at each chunk.
 * @returns The number of bytes written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeStreamToFile } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * const file = await Deno.open(path, { write: true });
 * assert.equal(await writeStreamToFile(new Response("hello").body!, file, { size: 5 }), 5);
 * file.close();
 * assert.equal(await Deno.readTextFile(path), "hello");
 * await Deno.remove(path);
 * ```
 */
export async function writeStreamToFile(
  stream: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  options: WriteStreamOptions = {},
): Promise<number> {
  const { size, sync, onChunk } = options;
  const chunkSize = options.chunkSize ?? CHUNK_SIZE;
  const filler = createBufferFiller(stream, {
    signal: options.signal,
    onConsumed: options.onConsumed,
  });
  // Small streams (most blobs) get one small buffer; a stream that fills it gets 1 MiB ones.
  let bufferSize = Math.min(FIRST_CHUNK_SIZE, chunkSize);
  const buffers: ArrayBuffer[] = [];
  let writing: Promise<void> = Promise.resolve();
  let written = 0;
  // Syncing as the file grows leaves little to flush at the end (1 GiB at once took 0.5 s).
  let syncing: Promise<void> | undefined;
  let unsynced = 0;
  const write = async (bytes: Uint8Array) => {
    for (let offset = 0; offset < bytes.byteLength;) {
      offset += await file.write(bytes.subarray(offset));
    }
  };
  try {
    for (let turn = 0;; turn = 1 - turn) {
      // This buffer's previous write ended before the last write started (awaited below).
      if ((buffers[turn]?.byteLength ?? 0) < bufferSize) {
        buffers[turn] = new ArrayBuffer(bufferSize);
      }
      const bytes = await filler.fill(new Uint8Array(buffers[turn]));
      buffers[turn] = bytes.buffer;
      if (bytes.byteLength === bufferSize) bufferSize = chunkSize;
      await writing;
      if (bytes.byteLength === 0) break;
      written += bytes.byteLength;
      unsynced += bytes.byteLength;
      onChunk?.(bytes);
      if (sync && unsynced >= SYNC_EVERY && syncing === undefined) {
        unsynced = 0;
        syncing = sync().finally(() => syncing = undefined);
        syncing.catch(() => {});
      }
      writing = write(bytes);
      // Not unhandled while the next buffer fills; awaited before the next write.
      writing.catch(() => {});
    }
    await syncing;
    await sync?.();
  } catch (error) {
    // A failed write stops the stream too (a download's connection closes).
    await filler.cancel(error).catch(() => {});
    await writing.catch(() => {});
    await syncing?.catch(() => {});
    throw error;
  }
  if (size !== undefined && written !== size) {
    // The stream checked its size already; this guards a stream that says otherwise.
    throw new RangeError(
      `Cannot write blob: ${written} bytes, expected ${size}`,
    );
  }
  return written;
}
