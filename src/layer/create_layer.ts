/**
 * Builds a reproducible layer (tar+gzip, tar+zstd or tar) from a directory or a file, with both
 * digests computed in the same single pass.
 *
 * @module
 */
import { basename, join } from "node:path";
import { DigestStream } from "../oci/digest.ts";
import { freeChunk } from "../io/bytes.ts";
import type { OciLayout } from "../store/layout_store.ts";
import { compress, type Compression, layerMediaType } from "./compression.ts";
import { createTarPacker, type TarHeader } from "./tar.ts";

/** A layer blob, as spack's `Blob` tuple: where it is, its two digests and its media type. */
export interface Layer {
  /** The compressed file, in the stage's `blobs/`. */
  readonly path: string;
  /** sha256 of the compressed file: the layer's digest in a manifest. */
  readonly compressedDigest: string;
  /** sha256 of the tar inside: the layer's `diff_id` in an image config (for "none", the same). */
  readonly uncompressedDigest: string;
  /** Size of the compressed file in bytes. */
  readonly size: number;
  /** How the tar is compressed. */
  readonly compression: Compression;
  /** Its media type in an OCI manifest (`layerMediaType` spells it for a Docker one). */
  readonly mediaType: string;
}

/** How far packing has read: entries (files, directories, links) and file bytes, of all. */
export interface PackProgress {
  /** Entries written so far. */
  readonly files: number;
  /** Entries in all. */
  readonly totalFiles: number;
  /** Bytes of file content read so far. */
  readonly bytes: number;
  /** Bytes of file content in all (as `lstat` saw them before packing). */
  readonly totalBytes: number;
}

/** Options of {@linkcode createLayer}. */
export interface CreateLayerOptions {
  /**
   * How the tar is compressed: gzip (level 6), zstd (level 3, as `zstd -3`) or none.
   * @default {"gzip"}
   */
  readonly compression?: Compression;
  /**
   * The modification time written for every entry, in seconds since the epoch.
   * @default {SOURCE_DATE_EPOCH from the environment, else 0}
   */
  readonly mtime?: number;
  /** A directory inside the archive under which everything goes, e.g. `opt/app`. */
  readonly prefix?: string;
  /** Extra files to add, by path inside the archive (spack adds a `buildinfo` file). */
  readonly extraFiles?: Readonly<Record<string, string | Uint8Array>>;
  /** Told about entries that are skipped (sockets, devices, fifos). */
  readonly onWarning?: (message: string) => void;
  /** Told as the tar walk reads entries and bytes (at most once per chunk read). */
  readonly onProgress?: (progress: PackProgress) => void;
  /** Stops packing; the unfinished layer file is removed. */
  readonly signal?: AbortSignal;
}

interface Entry {
  /** Path inside the archive, without a trailing slash. */
  name: string;
  /** Where it is on disk, or undefined for extra files. */
  source?: string;
  content?: Uint8Array;
  info?: Deno.FileInfo;
}

function defaultMtime(): number {
  let text: string | undefined;
  try {
    text = Deno.env.get("SOURCE_DATE_EPOCH");
  } catch {
    text = undefined;
  }
  return text && /^\d+$/.test(text) ? Number(text) : 0;
}

async function walk(
  root: string,
  relative: string,
  entries: Entry[],
): Promise<void> {
  const names: string[] = [];
  for await (const item of Deno.readDir(join(root, relative))) {
    names.push(item.name);
  }
  for (const name of names.sort()) {
    const path = relative ? `${relative}/${name}` : name;
    const source = join(root, path);
    const info = await Deno.lstat(source);
    entries.push({ name: path, source, info });
    if (info.isDirectory) await walk(root, path, entries);
  }
}

function compareNames(a: Entry, b: Entry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Packs a directory (or a single file) into a compressed tar layer in the stage (gzip unless
 * `compression` says zstd or none). The tar
 * is reproducible: entries sorted by path, one fixed mtime (`SOURCE_DATE_EPOCH` or 0), uid/gid 0
 * and no user or group names, permission bits kept and file-type bits dropped. Regular files,
 * directories, symlinks, hardlinks and long names (PAX) are written; sockets, devices and fifos
 * are skipped with a warning. The tar stream is hashed before and after compression in one pass
 * (once when it is not compressed), and the file is renamed into the stage under its digest only
 * when complete.
 *
 * @param source The directory or file to pack.
 * @param stage The OCI layout that receives the layer blob.
 * @param options Compression, mtime, prefix, extra files, warning callback.
 * @returns The layer's path, digests, size and media type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLayer } from "./create_layer.ts";
 * import { openLayout } from "../store/layout_store.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello");
 * const stage = await openLayout(await Deno.makeTempDir());
 * const first = await createLayer(dir, stage);
 * const second = await createLayer(dir, stage);
 * assert.equal(first.compressedDigest, second.compressedDigest);
 * const zstd = await createLayer(dir, stage, { compression: "zstd" });
 * assert.equal(zstd.uncompressedDigest, first.uncompressedDigest);
 * assert.equal(zstd.mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
 * ```
 */
export async function createLayer(
  source: string,
  stage: OciLayout,
  options: CreateLayerOptions = {},
): Promise<Layer> {
  const mtime = new Date((options.mtime ?? defaultMtime()) * 1000);
  const warn = options.onWarning ??
    ((message: string) => console.warn(message));
  const rootInfo = await Deno.stat(source);
  const entries: Entry[] = [];
  if (rootInfo.isDirectory) await walk(source, "", entries);
  else entries.push({ name: basename(source), source, info: rootInfo });
  for (const [name, content] of Object.entries(options.extraFiles ?? {})) {
    entries.push({
      name: name.replace(/^\/+|\/+$/g, ""),
      content: typeof content === "string"
        ? new TextEncoder().encode(content)
        : content,
    });
  }
  const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix) {
    const parents = prefix.split("/").map((_, i, parts) =>
      parts.slice(0, i + 1).join("/")
    );
    for (const entry of entries) entry.name = `${prefix}/${entry.name}`;
    entries.push(...parents.map((name) => ({ name })));
  }
  entries.sort(compareNames);

  const compression = options.compression ?? "gzip";
  const mediaType = layerMediaType(compression);
  const { readable, controller } = createTarPacker();
  /** The buffers files are read into: nothing but the tar stream sees them. */
  const owned = new WeakSet<ArrayBufferLike>();
  // Once a chunk is hashed and copied out (into a compressor's block, or the stage's write
  // buffers) it is garbage: it is freed at once, rather than left to a collector that lets
  // 64 MiB of them pile up. Only buffers nothing else can see: the file chunks read here, and
  // the compressor's output (each chunk a buffer of its own).
  const releaseOwned = (chunk: Uint8Array) => {
    if (owned.has(chunk.buffer)) freeChunk(chunk);
  };
  // An uncompressed tar is hashed once, by the stage.
  const uncompressed = compression === "none" ? undefined : new DigestStream();
  // Hashed, written to a locked temporary (removed by the next open after a kill) and renamed
  // under its digest by the stage.
  const writing = stage.ingest(
    uncompressed === undefined
      ? readable
      : compress(readable.pipeThrough(uncompressed), compression, {
        onConsumed: releaseOwned,
      }),
    mediaType,
    // As before the move to ingest: a packed layer can be packed again, so it is not synced.
    {
      signal: options.signal,
      sync: false,
      onConsumed: uncompressed === undefined ? releaseOwned : freeChunk,
    },
  );

  const { onProgress } = options;
  const progress = {
    files: 0,
    totalFiles: entries.length,
    bytes: 0,
    totalBytes: contentBytes(entries),
  };
  onProgress?.({ ...progress });
  try {
    const seen = new Map<string, string>();
    for (const entry of entries) {
      options.signal?.throwIfAborted();
      const header = headerOf(entry, mtime, seen, warn);
      progress.files++;
      if (header === undefined) continue;
      const body = controller.add(header);
      if (header.size > 0 && entry.source !== undefined) {
        await copyFileInto(entry.source, header.size, body, {
          owned,
          signal: options.signal,
          onBytes: onProgress && ((bytes) => {
            progress.bytes += bytes;
            onProgress({ ...progress });
          }),
        });
      } else if (entry.content !== undefined && entry.content.byteLength > 0) {
        const writer = body.getWriter();
        await writer.write(entry.content);
        await writer.close();
        progress.bytes += entry.content.byteLength;
      } else {
        await body.close();
      }
      onProgress?.({ ...progress });
    }
    controller.finalize();
  } catch (error) {
    controller.error(error);
    await writing.catch(() => {});
    throw error;
  }
  const { digest: compressedDigest, size } = await writing;
  const uncompressedDigest = uncompressed === undefined
    ? compressedDigest
    : (await uncompressed.result).digest;
  const path = stage.blobPath(compressedDigest);
  return {
    path,
    compressedDigest,
    uncompressedDigest,
    size,
    compression,
    mediaType,
  };
}

/** File content is read this much at a time (`FsFile.readable`'s 64 KiB cost 3x the time). */
const READ_BYTES = 1024 * 1024;

/**
 * Copies a file into its tar entry's body, in chunks of their own (remembered in `owned`),
 * sized to what is left of its `size` (as `lstat` saw it), so that small files take small buffers.
 * A file that grew or shrank since then makes the tar packer refuse the entry.
 */
async function copyFileInto(
  path: string,
  size: number,
  body: WritableStream<Uint8Array>,
  options: {
    owned: WeakSet<ArrayBufferLike>;
    signal?: AbortSignal;
    onBytes?: (bytes: number) => void;
  },
): Promise<void> {
  const writer = body.getWriter();
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path);
    let left = size;
    for (;;) {
      options.signal?.throwIfAborted();
      const chunk = new Uint8Array(Math.min(READ_BYTES, Math.max(left, 1)));
      const read = await file.read(chunk);
      if (read === null) break;
      options.owned.add(chunk.buffer);
      left -= read;
      await writer.write(
        read === chunk.byteLength ? chunk : chunk.subarray(0, read),
      );
      options.onBytes?.(read);
    }
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {});
    throw error;
  } finally {
    file?.close();
  }
}

/** Bytes of file content the entries hold, a hardlinked file's once. */
function contentBytes(entries: readonly Entry[]): number {
  const linked = new Set<string>();
  let sum = 0;
  for (const { content, info } of entries) {
    if (content !== undefined) sum += content.byteLength;
    else if (info?.isFile) {
      const key = `${info.dev}:${info.ino}`;
      if (info.nlink !== null && info.nlink > 1) {
        if (linked.has(key)) continue;
        linked.add(key);
      }
      sum += info.size;
    }
  }
  return sum;
}

/** The tar header of an entry, or undefined for what a layer cannot hold. */
function headerOf(
  entry: Entry,
  mtime: Date,
  seen: Map<string, string>,
  warn: (message: string) => void,
): TarHeader | undefined {
  const base = { mtime, uid: 0, gid: 0, uname: "", gname: "" };
  const info = entry.info;
  if (entry.content !== undefined) {
    return {
      ...base,
      name: entry.name,
      type: "file",
      size: entry.content.byteLength,
      mode: 0o644,
    };
  }
  if (info === undefined || info.isDirectory) {
    return {
      ...base,
      name: `${entry.name}/`,
      type: "directory",
      size: 0,
      mode: info ? info.mode! & 0o7777 : 0o755,
    };
  }
  if (info.isSymlink) {
    return {
      ...base,
      name: entry.name,
      type: "symlink",
      size: 0,
      mode: 0o777,
      linkname: Deno.readLinkSync(entry.source!),
    };
  }
  if (info.isFile) {
    const key = `${info.dev}:${info.ino}`;
    const first = info.nlink !== null && info.nlink > 1
      ? seen.get(key)
      : undefined;
    if (first !== undefined) {
      return {
        ...base,
        name: entry.name,
        type: "link",
        size: 0,
        mode: info.mode! & 0o7777,
        linkname: first,
      };
    }
    if (info.nlink !== null && info.nlink > 1) seen.set(key, entry.name);
    return {
      ...base,
      name: entry.name,
      type: "file",
      size: info.size,
      mode: info.mode! & 0o7777,
    };
  }
  warn(
    `Skipping ${entry.source}: sockets, devices and fifos cannot go in a layer`,
  );
  return undefined;
}
