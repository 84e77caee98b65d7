/**
 * Safe extraction of layers: streaming decompression (gzip, zstd) and untar that never writes
 * outside the target,
 * applies OCI whiteouts, and never leaves a half-written file under its final name.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { freeChunk } from "../io/bytes.ts";
import {
  createTemporary,
  lstatOrUndefined,
  removeAbandonedTemporaries,
} from "../io/files.ts";
import { readTar, type TarEntry, type TarEntryHeader } from "./tar.ts";
import type { Compression } from "./compression.ts";
import {
  decompressAndDigestOffThread,
  decompressOffThread,
} from "./off_thread.ts";

/** A name as errors show it: hostile ones can be a megabyte long. */
function shortened(name: string): string {
  return name.length > 300 ? `${name.slice(0, 300)}…` : name;
}

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
    super(`Cannot extract layer entry "${shortened(entry)}": ${reason}`);
    this.name = "UnsafeEntryError";
    this.entry = entry;
  }
}

/**
 * A layer that is not a well-formed (compressed) tar: gzip or zstd garbage, a damaged or
 * truncated header, an entry whose body ends before its declared size. Names the entry being read when it broke,
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
      ? ` entry "${shortened(options.entry)}"`
      : options.after !== undefined
      ? ` (after entry "${shortened(options.after)}")`
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
/** Longest path the kernel takes (PATH_MAX). */
const MAX_PATH_BYTES = 4096;

/** Options of {@linkcode extractLayer}. */
export interface ExtractLayerOptions {
  /**
   * How the stream is compressed (`compressionOfLayer` reads it off a layer's media type).
   * @default {"gzip"}
   */
  readonly compression?: Compression;
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

/** The prefix of a whiteout: `.wh.<name>` removes `<name>` left by lower layers (OCI image spec). */
const WHITEOUT_PREFIX = ".wh.";
/** aufs keeps its own metadata under this prefix; of those names only the opaque marker means something. */
const WHITEOUT_META_PREFIX = ".wh..wh.";
/** Marks a directory opaque: what lower layers left in it is removed. */
const OPAQUE_WHITEOUT = ".wh..wh..opq";

/** Refuses a NUL byte in any name or link target the layer carries. */
function refuseNul(entry: string, value: string, what: string): void {
  if (value.includes("\0")) {
    throw new UnsafeEntryError(entry, `${what}contains a NUL byte`);
  }
}

/**
 * The one check every path a layer carries goes through (entry names, whiteouts and opaque
 * markers, hardlink targets): splits it into components that stay strictly inside the target,
 * or throws. `.` and empty components are dropped; `..`, absolute paths, NUL bytes, paths
 * longer than PATH_MAX and components longer than NAME_MAX are refused.
 *
 * @param entry The entry's name, for the error.
 * @param value The path to check (the name itself, or a hardlink's target).
 * @param what How to introduce `value` in the error ("" for the entry's own name).
 */
function componentsOf(entry: string, value: string, what = ""): string[] {
  refuseNul(entry, value, what);
  if (value.startsWith("/")) {
    throw new UnsafeEntryError(entry, `${what}absolute paths are not allowed`);
  }
  const parts = value.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new UnsafeEntryError(
      entry,
      `${what}".." would leave the target directory`,
    );
  }
  const encoder = new TextEncoder();
  if (encoder.encode(value).byteLength > MAX_PATH_BYTES) {
    throw new UnsafeEntryError(
      entry,
      `${what}the path is longer than ${MAX_PATH_BYTES} bytes`,
    );
  }
  if (parts.some((p) => encoder.encode(p).byteLength > MAX_COMPONENT_BYTES)) {
    throw new UnsafeEntryError(
      entry,
      `${what}a path component is longer than ${MAX_COMPONENT_BYTES} bytes`,
    );
  }
  return parts;
}

/**
 * Checks a symlink's target: never empty or with a NUL byte; a relative one must not climb
 * above the target from the link's directory. Absolute targets are kept as they are (they mean
 * the image's root) and are never followed.
 */
function checkSymlinkTarget(
  entry: string,
  parts: readonly string[],
  linkname: string,
): void {
  const what = `its symlink target "${linkname}" `;
  if (linkname === "") {
    throw new UnsafeEntryError(entry, "its symlink target is empty");
  }
  refuseNul(entry, linkname, what);
  if (linkname.startsWith("/")) return;
  let depth = parts.length - 1;
  for (const part of linkname.split("/")) {
    if (part === "..") depth--;
    else if (part !== "" && part !== ".") depth++;
    if (depth < 0) {
      throw new UnsafeEntryError(entry, `${what}leaves the target directory`);
    }
  }
}

/** What an entry's last component makes of it. */
type EntryKind =
  | { readonly kind: "entry" }
  | { readonly kind: "opaque" }
  | { readonly kind: "whiteout"; readonly victim: string }
  | { readonly kind: "ignored" };

/**
 * Reads the whiteout conventions off an entry's (checked) components: `.wh..wh..opq` is an
 * opaque marker, other `.wh..wh.*` names are aufs metadata and ignored (as containerd does),
 * `.wh.<name>` removes `<name>`, which must be one component strictly inside the directory
 * (never `.`, `..` or empty, which would name the directory itself or its parent). A whiteout
 * name anywhere but the last component is refused: nothing is ever written under one.
 */
function kindOf(entry: string, parts: readonly string[]): EntryKind {
  const parents = parts.slice(0, -1);
  const hidden = parents.find((p) => p.startsWith(WHITEOUT_PREFIX));
  if (hidden !== undefined) {
    throw new UnsafeEntryError(
      entry,
      `its directory "${hidden}" is a whiteout name, which only a last component may be`,
    );
  }
  const leaf = parts[parts.length - 1];
  if (leaf === OPAQUE_WHITEOUT) return { kind: "opaque" };
  if (leaf.startsWith(WHITEOUT_META_PREFIX)) return { kind: "ignored" };
  if (!leaf.startsWith(WHITEOUT_PREFIX)) return { kind: "entry" };
  const victim = leaf.slice(WHITEOUT_PREFIX.length);
  if (victim === "" || victim === "." || victim === "..") {
    throw new UnsafeEntryError(
      entry,
      `the whiteout "${leaf}" must name a file inside its directory, not ${
        victim === ".." ? "its parent" : "the directory itself"
      }`,
    );
  }
  return { kind: "whiteout", victim };
}

/** Whether a directory mode still lets us create entries in it (else it is set at the end). */
function isWritableDirectoryMode(mode: number): boolean {
  return (mode & 0o300) === 0o300;
}

/** Removes a path (a directory with all it holds); never follows a symlink. */
async function removePath(path: string): Promise<void> {
  const info = await lstatOrUndefined(path);
  if (info === undefined) return;
  await Deno.remove(path, { recursive: info.isDirectory });
}

async function isEmptyDirectory(path: string): Promise<boolean> {
  for await (const _ of Deno.readDir(path)) return false;
  return true;
}

/** How much of a file's content is gathered before one write: fewer, larger writes. */
const WRITE_BUFFER_BYTES = 256 * 1024;

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength;) {
    offset += await file.write(bytes.subarray(offset));
  }
}

/**
 * Writes an entry's content to a file. Views of decompressed chunks are gathered in one of two
 * buffers (reused for every file) and written a MiB at a time, the other buffer filling while
 * one is written: the next chunks are read, hashed and copied while the kernel writes. A view
 * is copied before the next is asked for, as the reader requires.
 */
async function writeBody(
  file: Deno.FsFile,
  body: AsyncIterable<Uint8Array>,
  buffers: readonly [Uint8Array, Uint8Array],
  signal: AbortSignal | undefined,
): Promise<void> {
  let turn = 0;
  let filled = 0;
  let writing: Promise<void> = Promise.resolve();
  /** Writes the current buffer once the other's write is done, and turns to the other. */
  const flip = async () => {
    await writing;
    writing = writeAll(file, buffers[turn].subarray(0, filled));
    // Not unhandled while the other buffer fills; awaited before it is written.
    writing.catch(() => {});
    turn = 1 - turn;
    filled = 0;
  };
  try {
    for await (const view of body) {
      signal?.throwIfAborted();
      for (let at = 0; at < view.byteLength;) {
        const take = Math.min(
          view.byteLength - at,
          buffers[turn].byteLength - filled,
        );
        buffers[turn].set(view.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === buffers[turn].byteLength) await flip();
      }
    }
    if (filled > 0) await flip();
  } finally {
    await writing.catch(() => {});
  }
  await writing;
}

/**
 * Writes one layer's entries into the target and applies its whiteouts. It remembers what this
 * layer wrote, so that whiteouts and opaque markers remove only what lower layers left (OCI:
 * "whiteout files MUST only apply to resources in lower/parent layers"), wherever the marker
 * comes in the archive. Memory grows with the entries written into directories that lower
 * layers had filled, not with the layer's size: a directory this layer made (or found empty)
 * is remembered once, as all its own.
 */
class LayerWriter {
  /** Directories whose whole content is this layer's: made by it, or empty when it began. */
  readonly #own = new Set<string>();
  /** Paths this layer wrote into directories lower layers had filled. */
  readonly #written = new Set<string>();
  /** Directories lower layers had filled that hold something this layer wrote. */
  readonly #holding = new Set<string>();
  /** Directories already cleared of abandoned temporary files. */
  readonly #swept = new Set<string>();
  /** Modes that would keep us from writing into a directory, set at the end. */
  readonly #deferredModes = new Map<string, number>();
  /** Gather file content into larger writes, one filling while the other is written. */
  readonly #writeBuffers = [
    new Uint8Array(WRITE_BUFFER_BYTES),
    new Uint8Array(WRITE_BUFFER_BYTES),
  ] as const;

  private constructor(readonly root: string) {}

  /** Starts writing a layer into `root` (a real path). */
  static async open(root: string): Promise<LayerWriter> {
    const writer = new LayerWriter(root);
    if (await isEmptyDirectory(root)) writer.#own.add(root);
    return writer;
  }

  /**
   * The directory an entry goes in: each parent must be a real directory inside the root,
   * never a symlink (nothing is written or removed through a link). Missing parents are made
   * when `create`, else `undefined` says there is nothing there.
   */
  async directoryOf(
    entry: string,
    parts: readonly string[],
    create: boolean,
  ): Promise<string | undefined> {
    let current = this.root;
    for (const part of parts.slice(0, -1)) {
      current = join(current, part);
      const info = await lstatOrUndefined(current);
      if (info === undefined) {
        if (!create) return undefined;
        await Deno.mkdir(current, { mode: 0o755 });
        this.#wrote(current, true);
      } else if (info.isSymlink) {
        throw new UnsafeEntryError(
          entry,
          `its parent "${part}" is a symlink, and nothing is written through a link`,
        );
      } else if (!info.isDirectory) {
        if (!create) return undefined;
        throw new UnsafeEntryError(
          entry,
          `its parent "${part}" is not a directory`,
        );
      }
    }
    return current;
  }

  /** Remembers that this layer wrote `path` (a new directory when `madeDirectory`). */
  #wrote(path: string, madeDirectory: boolean): void {
    if (madeDirectory) this.#own.add(path);
    const parent = dirname(path);
    if (this.#own.has(parent)) return;
    this.#written.add(path);
    for (
      let dir = parent;
      dir !== this.root && !this.#holding.has(dir);
      dir = dirname(dir)
    ) {
      this.#holding.add(dir);
    }
  }

  /** Removes what lower layers left at `path` (strictly inside the root), keeping this layer's. */
  async #clearLower(path: string): Promise<void> {
    if (this.#own.has(path)) return;
    const info = await lstatOrUndefined(path);
    if (info === undefined) return;
    if (!this.#written.has(path) && !this.#holding.has(path)) {
      await Deno.remove(path, { recursive: info.isDirectory });
    } else if (info.isDirectory) {
      await this.#clearLowerChildren(path);
    }
  }

  async #clearLowerChildren(dir: string): Promise<void> {
    if (this.#own.has(dir)) return;
    const names: string[] = [];
    for await (const child of Deno.readDir(dir)) names.push(child.name);
    for (const name of names) await this.#clearLower(join(dir, name));
  }

  /** `.wh..wh..opq` in `dir`: what lower layers left in it goes (never `dir` itself). */
  async opaque(dir: string): Promise<void> {
    await this.#clearLowerChildren(dir);
  }

  /** `.wh.<victim>` in `dir`: what lower layers left at `dir/<victim>` goes. */
  async whiteout(dir: string, victim: string): Promise<void> {
    await this.#clearLower(join(dir, victim));
  }

  /** A directory entry: made if missing (replacing a non-directory), its mode applied. */
  async directory(path: string, mode: number): Promise<void> {
    const info = await lstatOrUndefined(path);
    const made = info === undefined || !info.isDirectory;
    if (made) {
      if (info !== undefined) await Deno.remove(path);
      await Deno.mkdir(path, { mode: 0o700 });
    }
    this.#wrote(path, made);
    if (isWritableDirectoryMode(mode)) {
      this.#deferredModes.delete(path);
      await Deno.chmod(path, mode);
    } else {
      this.#deferredModes.set(path, mode);
    }
  }

  /**
   * A regular file: written to a temporary name in its directory, given its mode (all of
   * `0o7777`: setuid, setgid and sticky too) and mtime, then renamed over whatever was there.
   */
  async file(
    path: string,
    body: AsyncIterable<Uint8Array>,
    header: TarEntryHeader,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const dir = dirname(path);
    // Files a killed extraction left in this directory go before the first new one.
    if (!this.#swept.has(dir)) {
      this.#swept.add(dir);
      await removeAbandonedTemporaries(dir);
    }
    const { temp, file, lock } = await createTemporary(path, {
      hidden: true,
      mode: 0o600,
    });
    try {
      try {
        await writeBody(file, body, this.#writeBuffers, signal);
      } finally {
        file.close();
      }
      await Deno.chmod(temp, header.mode & 0o7777);
      await Deno.utime(temp, header.mtime, header.mtime);
      const existing = await lstatOrUndefined(path);
      if (existing?.isDirectory) await removePath(path);
      await Deno.rename(temp, path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    } finally {
      lock.close();
    }
    this.#wrote(path, false);
  }

  /** A symlink (its target already checked), replacing whatever was there. */
  async symlink(path: string, linkname: string): Promise<void> {
    await removePath(path);
    await Deno.symlink(linkname, path);
    this.#wrote(path, false);
  }

  /**
   * A hardlink to a regular file already in the target, reached without going through a
   * symlink; it replaces whatever was at `path`.
   */
  async hardlink(entry: string, path: string, linkname: string): Promise<void> {
    const what = `its hardlink target "${linkname}" `;
    const targetParts = componentsOf(
      entry,
      linkname,
      `its hardlink target "${linkname}": `,
    );
    if (targetParts.length === 0) {
      throw new UnsafeEntryError(entry, "its hardlink target is empty");
    }
    let linked = this.root;
    let info: Deno.FileInfo | undefined;
    for (const part of targetParts) {
      linked = join(linked, part);
      info = await lstatOrUndefined(linked);
      if (info?.isSymlink) {
        throw new UnsafeEntryError(entry, `${what}goes through a symlink`);
      }
      if (info === undefined) {
        throw new UnsafeEntryError(
          entry,
          `${what}does not exist in the layer`,
        );
      }
    }
    if (!info?.isFile) {
      throw new UnsafeEntryError(entry, `${what}is not a regular file`);
    }
    if (linked === path) {
      throw new UnsafeEntryError(entry, `${what}is the entry itself`);
    }
    await removePath(path);
    await Deno.link(linked, path);
    this.#wrote(path, false);
  }

  /** Applies the directory modes that had to wait (innermost first). */
  async finish(): Promise<void> {
    for (const [path, mode] of [...this.#deferredModes].reverse()) {
      await Deno.chmod(path, mode);
    }
  }
}

/**
 * Extracts a layer into a directory, streaming: decompress (gzip, zstd or none; memory bounded
 * whatever the layer inflates to), hash (for `diff_ids`), untar. Entries
 * that would escape the directory are refused with an {@linkcode UnsafeEntryError} before
 * anything is written for them: absolute names, `..`, relative symlink targets that climb out,
 * hardlinks to anything outside or through a symlink, and any entry whose parent directory is a
 * symlink (so nothing is ever written through a link). Absolute symlink targets are kept as they
 * are (they mean the image's root, as container runtimes read them) and are never followed.
 * OCI whiteouts remove what lower layers left (`.wh.<name>`, and `.wh..wh..opq` for a whole
 * directory). Files are written to a temporary name and renamed when complete.
 *
 * @param stream The layer bytes (gzip unless `compression` says otherwise).
 * @param target The directory to extract into (created if missing).
 * @param options Compression and warning callback.
 * @returns The uncompressed digest and the number of entries.
 * @throws {UnsafeEntryError} For an entry that would escape the directory.
 * @throws {LayerFormatError} When the bytes are not a well-formed (compressed) tar; it names the
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
  const writer = await LayerWriter.open(await Deno.realPath(target));
  const compression = options.compression ?? "gzip";
  // The tar's digest is computed on whichever thread has time for it (measured on a 400 MiB
  // tree): zstd decompresses on its Worker in about half the time this thread takes to read
  // and write the files, so the Worker hashes too; gzip's inflate is the slower side, and "none"
  // has no Worker, so they are hashed here, as the tar is read.
  const hash = createHash("sha256");
  let tar: ReadableStream<Uint8Array>;
  let digest: Promise<string> | undefined;
  if (compression === "zstd") {
    ({ stream: tar, digest } = decompressAndDigestOffThread(
      stream,
      compression,
    ));
  } else tar = decompressOffThread(stream, compression);
  const entries = readTar(tar, {
    onChunk: digest ? undefined : (chunk) => hash.update(chunk),
    // Decompressed output is ours alone; a caller's chunks ("none") are left alone.
    onRelease: compression === "none" ? undefined : freeChunk,
  });
  let count = 0;
  /** The entry being extracted, and the last one finished, for errors. */
  let current: string | undefined;
  let previous: string | undefined;
  try {
    for (;;) {
      if (current !== undefined) [previous, current] = [current, undefined];
      options.signal?.throwIfAborted();
      const { value: entry, done } = await entries.next();
      if (done) break;
      current = entry.header.name;
      if (await extractEntry(writer, entry, options.signal, warn)) count++;
    }
  } catch (error) {
    await entries.return(undefined).catch(() => {});
    throw asExtractionError(error, options.signal, current, previous);
  }
  await writer.finish();
  return {
    uncompressedDigest: digest ? await digest : `sha256:${hash.digest("hex")}`,
    entries: count,
  };
}

/** Extracts one entry; says whether it wrote one (whiteouts and skipped types do not count). */
async function extractEntry(
  writer: LayerWriter,
  { header, body }: TarEntry,
  signal: AbortSignal | undefined,
  warn: (message: string) => void,
): Promise<boolean> {
  const { name, type } = header;
  const parts = componentsOf(name, name);
  if (parts.length === 0) {
    // "./" names the target itself: nothing to write, and nothing may replace it.
    if (type === "directory") return false;
    throw new UnsafeEntryError(
      name,
      `a ${type} entry cannot replace the target directory`,
    );
  }
  const kind = kindOf(name, parts);
  if (kind.kind === "ignored") return false;
  if (kind.kind !== "entry") {
    const dir = await writer.directoryOf(name, parts, false);
    if (dir === undefined) return false;
    if (kind.kind === "opaque") await writer.opaque(dir);
    else await writer.whiteout(dir, kind.victim);
    return false;
  }
  const dir = await writer.directoryOf(name, parts, true);
  const path = join(dir!, parts[parts.length - 1]);
  switch (type) {
    case "directory":
      await writer.directory(path, header.mode & 0o7777);
      return true;
    case "file":
      await writer.file(path, body, header, signal);
      return true;
    case "symlink":
      checkSymlinkTarget(name, parts, header.linkname);
      await writer.symlink(path, header.linkname);
      return true;
    case "link":
      await writer.hardlink(name, path, header.linkname);
      return true;
    default:
      warn(`Skipping layer entry "${name}": ${type} entries are not extracted`);
      return false;
  }
}

/** What extraction throws for an error: ours as they are, the archive's as a LayerFormatError. */
function asExtractionError(
  error: unknown,
  signal: AbortSignal | undefined,
  current: string | undefined,
  previous: string | undefined,
): unknown {
  if (
    error instanceof UnsafeEntryError || error instanceof LayerFormatError ||
    signal?.aborted || isFileSystemError(error)
  ) {
    return error;
  }
  // Whatever else broke came from the bytes: decompression, the tar headers, or a body cut short.
  const what = (error as Error)?.message ?? String(error);
  return new LayerFormatError(
    current !== undefined
      ? `the archive is damaged or ends inside this entry: ${what}`
      : `the archive is damaged: ${what}`,
    { entry: current, after: previous, cause: error },
  );
}
