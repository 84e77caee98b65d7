/**
 * Safe extraction of layers: streaming gunzip and untar that never writes outside the target,
 * applies OCI whiteouts, and never leaves a half-written file under its final name.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { DigestStream } from "../reference/digest.ts";
import {
  createTemporary,
  removeAbandonedTemporaries,
} from "../layout/files.ts";
import { createTarDecoder, type TarHeader } from "./tar.ts";

/**
 * A layer entry that would escape the target directory, or that cannot be extracted safely.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnsafeEntryError } from "./extract_layer.ts";
 * assert.match(new UnsafeEntryError("../x", "it leaves the target").message, /"\.\.\/x"/);
 * ```
 */
export class UnsafeEntryError extends Error {
  /** The entry's name in the archive. */
  readonly entry: string;

  /**
   * Creates the error.
   *
   * @param entry The entry's name in the archive.
   * @param reason Why it is refused.
   */
  constructor(entry: string, reason: string) {
    super(`Cannot extract layer entry "${entry}": ${reason}`);
    this.name = "UnsafeEntryError";
    this.entry = entry;
  }
}

/**
 * A layer that is not a well-formed (gzipped) tar: gzip garbage, a damaged or truncated header,
 * an entry whose body ends before its declared size. Names the entry being read when it broke,
 * or the last complete one before a damaged header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LayerFormatError } from "./extract_layer.ts";
 * const error = new LayerFormatError("the archive ends inside it", { entry: "usr/bin/tool" });
 * assert.equal(error.entry, "usr/bin/tool");
 * assert.match(error.message, /^Cannot extract layer entry "usr\/bin\/tool": the archive ends inside it/);
 * ```
 */
export class LayerFormatError extends Error {
  /** The entry being read when the archive broke, if one was. */
  readonly entry: string | undefined;
  /** The last entry read completely before the damage, if any. */
  readonly after: string | undefined;

  /**
   * Creates the error.
   *
   * @param reason What is wrong with the archive.
   * @param options The entry being read or the last complete one, and the underlying error.
   */
  constructor(
    reason: string,
    options: { entry?: string; after?: string; cause?: unknown } = {},
  ) {
    const where = options.entry !== undefined
      ? ` entry "${options.entry}"`
      : options.after !== undefined
      ? ` (after entry "${options.after}")`
      : "";
    super(`Cannot extract layer${where}: ${reason}`, { cause: options.cause });
    this.name = "LayerFormatError";
    this.entry = options.entry;
    this.after = options.after;
  }
}

/** Errors of the file system (disk full, permissions), which are not the archive's fault. */
function isFileSystemError(error: unknown): boolean {
  return Object.values(Deno.errors).some((type) => error instanceof type);
}

/** Longest path component most file systems store (NAME_MAX). */
const MAX_COMPONENT_BYTES = 255;

/** Options of {@linkcode extractLayer}. */
export interface ExtractLayerOptions {
  /**
   * Whether the stream is gzip-compressed.
   * @default {true}
   */
  readonly gzip?: boolean;
  /** Told about entries that are skipped (devices, fifos). */
  readonly onWarning?: (message: string) => void;
  /** Stops extraction; the file being written is removed. */
  readonly signal?: AbortSignal;
}

/** What extraction saw. */
export interface ExtractResult {
  /** sha256 of the uncompressed tar, to check against the config's `diff_ids`. */
  readonly uncompressedDigest: string;
  /** Entries written (files, directories, links). */
  readonly entries: number;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_WHITEOUT = ".wh..wh..opq";

/** Splits an entry name into safe components, or throws. */
function componentsOf(name: string): string[] {
  if (name.startsWith("/")) {
    throw new UnsafeEntryError(name, "absolute paths are not allowed");
  }
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new UnsafeEntryError(name, '".." would leave the target directory');
  }
  if (parts.some((p) => p.includes("\0"))) {
    throw new UnsafeEntryError(name, "the name contains a NUL byte");
  }
  const encoder = new TextEncoder();
  if (parts.some((p) => encoder.encode(p).byteLength > MAX_COMPONENT_BYTES)) {
    throw new UnsafeEntryError(
      name,
      `a path component is longer than ${MAX_COMPONENT_BYTES} bytes`,
    );
  }
  return parts;
}

async function lstatOrUndefined(
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
 * Extracts a layer into a directory, streaming: gunzip, hash (for `diff_ids`), untar. Entries
 * that would escape the directory are refused with an {@linkcode UnsafeEntryError} before
 * anything is written for them: absolute names, `..`, relative symlink targets that climb out,
 * hardlinks to anything outside or through a symlink, and any entry whose parent directory is a
 * symlink (so nothing is ever written through a link). Absolute symlink targets are kept as they
 * are (they mean the image's root, as container runtimes read them) and are never followed.
 * OCI whiteouts remove what lower layers left (`.wh.<name>`, and `.wh..wh..opq` for a whole
 * directory). Files are written to a temporary name and renamed when complete.
 *
 * @param stream The layer bytes (gzip unless `gzip: false`).
 * @param target The directory to extract into (created if missing).
 * @param options Compression and warning callback.
 * @returns The uncompressed digest and the number of entries.
 * @throws {UnsafeEntryError} For an entry that would escape the directory.
 * @throws {LayerFormatError} When the bytes are not a well-formed (gzipped) tar; it names the
 * entry being read, or the last complete one.
 *
 * @example
 * ```ts ignore
 * const { uncompressedDigest } = await extractLayer((await Deno.open("layer.tar.gz")).readable, "rootfs");
 * ```
 */
export async function extractLayer(
  stream: ReadableStream<Uint8Array>,
  target: string,
  options: ExtractLayerOptions = {},
): Promise<ExtractResult> {
  const warn = options.onWarning ??
    ((message: string) => console.warn(message));
  await Deno.mkdir(target, { recursive: true });
  const root = await Deno.realPath(target);
  const hasher = new DigestStream();
  const tar = (options.gzip ?? true)
    ? stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<
        Uint8Array,
        Uint8Array
      >,
    )
    : stream;
  const entriesStream = tar.pipeThrough(hasher).pipeThrough(
    createTarDecoder({ strict: true }),
  );
  /** Paths this layer created: an opaque whiteout keeps them. */
  const created = new Set<string>();
  /** Directories already cleared of abandoned temporary files. */
  const swept = new Set<string>();
  const directoryModes = new Map<string, number>();
  let count = 0;
  /** The entry being extracted, and the last one finished, for errors. */
  let current: string | undefined;
  let previous: string | undefined;

  /** Makes sure each parent of `parts` is a real directory inside the root (never a symlink). */
  async function ensureParents(name: string, parts: string[]): Promise<string> {
    let current = root;
    for (const part of parts.slice(0, -1)) {
      current = join(current, part);
      const info = await lstatOrUndefined(current);
      if (info === undefined) {
        await Deno.mkdir(current, { mode: 0o755 });
        created.add(current);
      } else if (info.isSymlink) {
        throw new UnsafeEntryError(
          name,
          `its parent "${part}" is a symlink, and nothing is written through a link`,
        );
      } else if (!info.isDirectory) {
        throw new UnsafeEntryError(
          name,
          `its parent "${part}" is not a directory`,
        );
      }
    }
    return join(root, ...parts);
  }

  async function clearPath(path: string): Promise<void> {
    const info = await lstatOrUndefined(path);
    if (info === undefined) return;
    if (info.isDirectory) await Deno.remove(path, { recursive: true });
    else await Deno.remove(path);
  }

  const reader = entriesStream.getReader();
  try {
    for (;;) {
      if (current !== undefined) [previous, current] = [current, undefined];
      options.signal?.throwIfAborted();
      const { value: entry, done } = await reader.read();
      if (done) break;
      const header: TarHeader = entry.header;
      const name = header.name;
      current = name;
      const parts = componentsOf(name);
      const type = header.type ?? "file";
      if (parts.length === 0) {
        await entry.body.cancel();
        continue;
      }
      const leaf = parts[parts.length - 1];
      const path = await ensureParents(name, parts);

      if (leaf === OPAQUE_WHITEOUT) {
        await entry.body.cancel();
        const dir = dirname(path);
        for await (const child of Deno.readDir(dir)) {
          const childPath = join(dir, child.name);
          if (!created.has(childPath)) await clearPath(childPath);
        }
        continue;
      }
      if (leaf.startsWith(WHITEOUT_PREFIX)) {
        await entry.body.cancel();
        await clearPath(
          join(dirname(path), leaf.slice(WHITEOUT_PREFIX.length)),
        );
        continue;
      }

      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date(0);
      if (type === "directory") {
        await entry.body.cancel();
        const info = await lstatOrUndefined(path);
        if (info !== undefined && !info.isDirectory) await clearPath(path);
        if (info === undefined || !info.isDirectory) {
          await Deno.mkdir(path, { mode: 0o755 });
        }
        // Modes are set at the end: a read-only directory must still receive its children.
        directoryModes.set(path, mode);
        created.add(path);
      } else if (type === "file") {
        // Files a killed extraction left in this directory go before the first new one.
        const dir = dirname(path);
        if (!swept.has(dir)) {
          swept.add(dir);
          await removeAbandonedTemporaries(dir);
        }
        const { temp, file, lock } = await createTemporary(path, {
          hidden: true,
          mode: 0o600,
        });
        try {
          await entry.body.pipeTo(file.writable, { signal: options.signal });
          await Deno.chmod(temp, mode);
          await Deno.utime(temp, mtime, mtime);
          const existing = await lstatOrUndefined(path);
          if (existing?.isDirectory) await clearPath(path);
          await Deno.rename(temp, path);
        } catch (error) {
          await Deno.remove(temp).catch(() => {});
          throw error;
        } finally {
          lock.close();
        }
        created.add(path);
      } else if (type === "symlink") {
        await entry.body.cancel();
        const linkname = header.linkname ?? "";
        if (linkname === "" || linkname.includes("\0")) {
          throw new UnsafeEntryError(
            name,
            "its symlink target is empty or contains a NUL byte",
          );
        }
        if (!linkname.startsWith("/")) {
          const climbed = [...parts.slice(0, -1), ...linkname.split("/")];
          let depth = 0;
          for (const part of climbed) {
            if (part === "..") depth--;
            else if (part !== "" && part !== ".") depth++;
            if (depth < 0) {
              throw new UnsafeEntryError(
                name,
                `its symlink target "${linkname}" leaves the target directory`,
              );
            }
          }
        }
        await clearPath(path);
        await Deno.symlink(linkname, path);
        created.add(path);
      } else if (type === "link") {
        await entry.body.cancel();
        const linkname = header.linkname ?? "";
        const targetParts = componentsOf(linkname);
        if (targetParts.length === 0) {
          throw new UnsafeEntryError(name, "its hardlink target is empty");
        }
        let linked = root;
        let info: Deno.FileInfo | undefined;
        for (const part of targetParts) {
          linked = join(linked, part);
          info = await lstatOrUndefined(linked);
          if (info?.isSymlink) {
            throw new UnsafeEntryError(
              name,
              `its hardlink target "${linkname}" goes through a symlink`,
            );
          }
          if (info === undefined) {
            throw new UnsafeEntryError(
              name,
              `its hardlink target "${linkname}" does not exist in the layer`,
            );
          }
        }
        if (!info?.isFile) {
          throw new UnsafeEntryError(
            name,
            `its hardlink target "${linkname}" is not a regular file`,
          );
        }
        await clearPath(path);
        await Deno.link(linked, path);
        created.add(path);
      } else {
        await entry.body.cancel();
        warn(
          `Skipping layer entry "${name}": ${type} entries are not extracted`,
        );
        continue;
      }
      count++;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    if (
      error instanceof UnsafeEntryError || error instanceof LayerFormatError ||
      options.signal?.aborted || isFileSystemError(error)
    ) {
      throw error;
    }
    // Whatever else broke came from the bytes: gunzip, the tar headers, or a body cut short.
    const what = (error as Error)?.message ?? String(error);
    throw new LayerFormatError(
      current !== undefined
        ? `the archive is damaged or ends inside this entry: ${what}`
        : `the archive is damaged: ${what}`,
      { entry: current, after: previous, cause: error },
    );
  }
  for (const [path, mode] of [...directoryModes].reverse()) {
    await Deno.chmod(path, mode);
  }
  const { digest } = await hasher.result;
  return { uncompressedDigest: digest, entries: count };
}
