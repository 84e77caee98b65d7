/**
 * An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): the stage and
 * cache of downloads, and a source or target of copies that skopeo and umoci can read. One
 * class, {@linkcode OciLayout}, is the layout and its {@linkcode Store}.
 *
 * @module
 */
import { join, relative } from "node:path";
import { fileBytes } from "../io/bytes.ts";
import {
  DigestMismatchError,
  digestOf,
  digestOfFile,
  DigestStream,
  parseDigest,
  verifyStream,
} from "../oci/digest.ts";
import type { Descriptor, ImageIndex } from "../oci/manifest.ts";
import type { BlobSource } from "../transport/request_body.ts";
import {
  type BlobReader,
  type BlobUpload,
  type ByteRange,
  type CallOptions,
  type Deleter,
  type Ingester,
  isManifestOrIndex,
  type PushOptions,
  type ReferrerLister,
  referrerOf,
  type ReferrersOptions,
  type Store,
  type TagLister,
  type Uploader,
} from "./store.ts";
import { fileUpload } from "./uploads.ts";
import {
  createTemporary,
  removeAbandonedTemporaries,
  statOrUndefined,
  syncDirectory,
  writeFileAtomic,
  writeStreamToFile,
} from "../io/files.ts";
import { OCI_INDEX_MEDIA_TYPE } from "../oci/media_types.ts";
import {
  ManifestError,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "../oci/parse_manifest.ts";

/** The annotation that names an image in a layout's `index.json`. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const LAYOUT_VERSION = '{"imageLayoutVersion":"1.0.0"}';

/** Options of {@linkcode OciLayout} and {@linkcode openLayout}. */
export interface LayoutOptions {
  /**
   * A blob directory shared with other layouts (`<dir>/<algorithm>/<encoded>`), which the
   * layout's `blobs` links to (`openLayout` makes the link), as the embedded registry keeps
   * one layout per repository over one set of blobs. What such a layout holds is what its
   * `index.json` names: a manifest pushed without a tag is entered untagged, `resolve` by
   * digest finds only those entries (with the media type they were pushed with), and a
   * delete removes entries, never a shared file.
   */
  readonly blobs?: string;
}

/**
 * An OCI image layout directory. Blobs are written to a temporary file, verified while they
 * stream (digest and size), synced, then renamed into place (and the directory synced), so a
 * blob under its final name is always whole and right, also after a crash. `index.json`
 * updates are serialised within the process, atomic and synced the same way. It also deletes,
 * lists referrers, serves blobs by digest (byte ranges too) and takes uploads in pieces; with
 * {@linkcode LayoutOptions.blobs} it is one of several layouts over one blob directory.
 *
 * @example Stage a blob and tag an image
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLayout } from "./layout_store.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const dir = await Deno.makeTempDir();
 * const layout = await openLayout(dir);
 * const digest = digestOf("hello");
 * await layout.writeBlob(digest, new Response("hello").body!, { size: 5 });
 * assert.ok(await layout.hasBlob(digest, { size: 5 }));
 * await layout.tag({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 5 }, "v1");
 * assert.equal((await layout.tagged("v1"))?.digest, digest);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class OciLayout
  implements
    Store,
    TagLister,
    Ingester,
    Deleter,
    ReferrerLister,
    BlobReader,
    Uploader {
  /** The layout's directory. */
  readonly root: string;
  /** Where its blobs live: `root/blobs`, or a shared directory. */
  readonly #blobs: string;
  /** Whether the blobs are shared (what the layout holds is what index.json names). */
  readonly #shared: boolean;
  #indexLock: Promise<unknown> = Promise.resolve();

  /**
   * Wraps a layout directory.
   *
   * @param root The layout's directory; use {@linkcode openLayout} to create it.
   * @param options A shared blob directory.
   */
  constructor(root: string, options: LayoutOptions = {}) {
    this.root = root;
    this.#blobs = options.blobs ?? join(root, "blobs");
    this.#shared = options.blobs !== undefined;
  }

  /**
   * Where a blob lives: `blobs/<algorithm>/<encoded>`.
   *
   * @param digest The blob's digest.
   * @returns The path.
   */
  blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.#blobs, algorithm, encoded);
  }

  /**
   * Tells whether the layout holds a blob. With `size`, a file of another size is damaged: it
   * is removed and the answer is false. With `verify`, the file is hashed again.
   *
   * @param digest The blob's digest.
   * @param options The expected size, and whether to re-hash.
   * @returns True when a good copy is there.
   */
  async hasBlob(
    digest: string,
    options: { size?: number; verify?: boolean } = {},
  ): Promise<boolean> {
    const path = this.blobPath(digest);
    const info = await statOrUndefined(path);
    if (info === undefined) return false;
    let good = options.size === undefined || info.size === options.size;
    if (good && options.verify) {
      const actual = await digestOfFile(path, parseDigest(digest).algorithm);
      good = actual.digest === digest;
    }
    if (!good) await Deno.remove(path).catch(() => {});
    return good;
  }

  /**
   * Writes a blob from a stream: to a temporary file, verified while it streams, synced, then
   * renamed into place, and its directory synced. On any failure the temporary file is removed
   * and nothing is left; so too on an abort of `options.signal`, which cancels the stream at
   * once and rejects with the signal's reason.
   * Concurrent writers of the same blob each write their own temporary file; the renames
   * replace identical bytes.
   *
   * @param digest The blob's digest, checked against the bytes.
   * @param stream The bytes.
   * @param options The expected size, an abort signal, and `verified` for a stream that checks
   * itself against this digest and size (then it is not hashed here).
   * @returns The blob's path.
   * @throws {DigestMismatchError} When the bytes do not match.
   */
  async writeBlob(
    digest: string,
    stream: ReadableStream<Uint8Array>,
    options: { size?: number; signal?: AbortSignal; verified?: boolean } = {},
  ): Promise<string> {
    const { signal } = options;
    const path = this.blobPath(digest);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    // A stream that checks itself for this digest and size (another store's fetch, as a copy
    // says with `verified`) is not hashed twice: it ends only if it matched, and nothing of a
    // stream that errored is kept.
    const verified = options.verified
      ? stream
      : verifyStream(stream, digest, { size: options.size });
    const { temp, file, lock } = await createTemporary(path).catch(
      async (error) => {
        await verified.cancel().catch(() => {});
        throw error;
      },
    );
    try {
      // fsync works per file, not per descriptor: the lock's syncs while `file` writes.
      await writeStreamToFile(verified, file, {
        size: options.size,
        sync: () => lock.syncData(),
        signal,
      });
      file.close();
      // An abort during the last write or sync still keeps nothing.
      signal?.throwIfAborted();
      await Deno.rename(temp, path);
      // The name lasts only once its directory is synced: before index.json can name it.
      await syncDirectory(join(path, ".."));
      return path;
    } catch (error) {
      try {
        file.close();
      } catch {
        // Already closed.
      }
      await Deno.remove(temp).catch(() => {});
      await verified.cancel().catch(() => {});
      throw signal?.aborted ? signal.reason : error;
    } finally {
      lock.close();
    }
  }

  /**
   * Opens a blob for reading. The stream reads 1 MiB at a time (a file's own stream reads
   * 64 KiB, which costs about 1 s per GiB more downstream) and is a byte stream, so a BYOB
   * reader can read into its own buffer.
   *
   * @param digest The blob's digest.
   * @param options A byte range to read instead of the whole, and a signal.
   * @returns Its bytes, unverified.
   * @throws {Deno.errors.NotFound} When the layout does not hold it.
   */
  async readBlob(
    digest: string,
    options: CallOptions & { range?: ByteRange } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    options.signal?.throwIfAborted();
    const file = await Deno.open(this.blobPath(digest));
    const { range } = options;
    if (range === undefined) return fileBytes(() => Promise.resolve(file));
    try {
      await file.seek(range.start, Deno.SeekMode.Start);
    } catch (error) {
      file.close();
      throw error;
    }
    return fileBytes(() => Promise.resolve(file), {
      length: range.end - range.start + 1,
    });
  }

  /**
   * The size of a blob the layout holds.
   *
   * @param digest The blob's digest.
   * @param options A signal.
   * @returns Its size in bytes, or undefined.
   */
  async blobSize(
    digest: string,
    options?: CallOptions,
  ): Promise<number | undefined> {
    options?.signal?.throwIfAborted();
    return (await statOrUndefined(this.blobPath(digest)))?.size;
  }

  /**
   * Reads `index.json`, checked as an image index by `parseManifest` (a document `mediaType`
   * may be missing, or a Docker manifest list's).
   *
   * @returns The layout's index.
   * @throws {ManifestError} When it is not a well-formed index; the message names the file.
   */
  async readIndex(): Promise<ImageIndex> {
    const path = join(this.root, "index.json");
    const bytes = await Deno.readFile(path);
    // Written here, and as long as the layout has tags: no manifest's size limit.
    return parseManifest(bytes, OCI_INDEX_MEDIA_TYPE, {
      lenient: true,
      maxSize: Infinity,
      context: `Cannot parse ${path}`,
    }).manifest as ImageIndex;
  }

  /**
   * Names an image in `index.json` (`org.opencontainers.image.ref.name`), replacing an entry of
   * the same name. The manifest's blob must already be in the layout.
   *
   * @param descriptor The manifest or index.
   * @param name The tag.
   */
  tag(descriptor: Descriptor, name: string): Promise<void> {
    return this.#updateIndex((entries) => {
      const manifests = entries.filter((entry) =>
        entry.annotations?.[REF_NAME_ANNOTATION] !== name
      );
      manifests.push({
        ...descriptor,
        annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: name },
      });
      return { manifests, result: undefined };
    });
  }

  /**
   * Changes `index.json`'s entries, one change at a time within the process, atomically and
   * synced.
   */
  #updateIndex<T>(
    change: (manifests: Descriptor[]) => { manifests: Descriptor[]; result: T },
  ): Promise<T> {
    const run = this.#indexLock.then(async () => {
      const index = await this.readIndex();
      const { manifests, result } = change([...index.manifests]);
      await writeFileAtomic(
        join(this.root, "index.json"),
        new TextEncoder().encode(JSON.stringify({ ...index, manifests })),
      );
      return result;
    });
    this.#indexLock = run.catch(() => {});
    return run;
  }

  /** Enters a manifest without a name, unless an untagged entry of it is there. */
  #enterUntagged(descriptor: Descriptor): Promise<void> {
    return this.#updateIndex((entries) => {
      const manifests = entries.filter((entry) =>
        !(entry.digest === descriptor.digest &&
          entry.annotations?.[REF_NAME_ANNOTATION] === undefined)
      );
      const { mediaType, digest, size } = descriptor;
      manifests.push({ mediaType, digest, size });
      return { manifests, result: undefined };
    });
  }

  /**
   * Finds the image a tag names in `index.json`.
   *
   * @param name The tag.
   * @returns Its descriptor (without the name annotation), or undefined.
   */
  async tagged(name: string): Promise<Descriptor | undefined> {
    const index = await this.readIndex();
    const entry = index.manifests.findLast((e) =>
      e.annotations?.[REF_NAME_ANNOTATION] === name
    );
    if (entry === undefined) return undefined;
    const { [REF_NAME_ANNOTATION]: _, ...rest } = entry.annotations ?? {};
    const { annotations: _a, ...descriptor } = entry;
    return Object.keys(rest).length
      ? { ...descriptor, annotations: rest }
      : descriptor;
  }

  /** `oci:` and the directory, for messages. */
  get name(): string {
    return `oci:${this.root}`;
  }

  /**
   * Tells whether the layout holds a blob or manifest of the descriptor's size (a file of
   * another size is damaged: it is removed).
   *
   * @param descriptor The blob.
   * @param options A signal.
   * @returns True when a good copy is there.
   */
  async exists(
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<boolean> {
    options?.signal?.throwIfAborted();
    if (!(await this.#holds(descriptor))) return false;
    return await this.hasBlob(descriptor.digest, { size: descriptor.size });
  }

  /** False for a manifest that a layout of shared blobs does not name in index.json. */
  async #holds(descriptor: Descriptor): Promise<boolean> {
    if (!this.#shared || !isManifestOrIndex(descriptor.mediaType)) return true;
    return (await this.readIndex()).manifests.some((entry) =>
      entry.digest === descriptor.digest
    );
  }

  /**
   * Opens a blob or manifest, verified while it streams (1 MiB reads).
   *
   * @param descriptor The blob.
   * @param options A signal: once aborted, the stream errors with its reason.
   * @returns The bytes.
   * @throws {Deno.errors.NotFound} When the layout does not hold it.
   */
  async fetch(
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<ReadableStream<Uint8Array>> {
    options?.signal?.throwIfAborted();
    if (!(await this.#holds(descriptor))) {
      throw new Deno.errors.NotFound(
        `Cannot find ${descriptor.digest} in OCI layout ${this.root}: index.json does not name it`,
      );
    }
    return verifyStream(
      await this.readBlob(descriptor.digest),
      descriptor.digest,
      {
        size: descriptor.size,
        context: this.blobPath(descriptor.digest),
        signal: options?.signal,
      },
    );
  }

  /**
   * Stores a blob (unless a good copy is there), or a manifest or index, then under
   * `options.tag` in `index.json` when given.
   *
   * @param descriptor What is pushed.
   * @param source Its bytes.
   * @param options Tag, signal, and `verified` for a source that checks itself.
   */
  async push(
    descriptor: Descriptor,
    source: BlobSource,
    options: PushOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    if (!(await this.hasBlob(descriptor.digest, { size: descriptor.size }))) {
      await this.writeBlob(descriptor.digest, source.open(), {
        size: descriptor.size,
        signal: options.signal,
        verified: options.verified,
      });
    }
    if (options.tag !== undefined && isManifestOrIndex(descriptor.mediaType)) {
      await this.tag(descriptor, options.tag);
    } else if (
      isManifestOrIndex(descriptor.mediaType) &&
      (this.#shared || await this.#hasSubject(descriptor))
    ) {
      // A referrer is found through index.json, so it is entered even untagged.
      await this.#enterUntagged(descriptor);
    }
  }

  /** Whether a stored manifest names a `subject` (a referrer). */
  async #hasSubject(descriptor: Descriptor): Promise<boolean> {
    if (descriptor.size > MAX_MANIFEST_SIZE) return false;
    try {
      const bytes = await Deno.readFile(this.blobPath(descriptor.digest));
      return JSON.parse(new TextDecoder().decode(bytes))?.subject !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Finds a manifest or index by tag (in `index.json`) or digest; the file is read, verified
   * and checked by `parseManifest` (the media type `index.json` gives is read as a registry's
   * `Content-Type` is).
   *
   * @param reference A tag or digest.
   * @param options A signal.
   * @returns Its descriptor.
   * @throws {Deno.errors.NotFound} When no such tag is in `index.json`, or no such blob.
   * @throws {ManifestError} When the file is not a usable manifest.
   */
  async resolve(
    reference: string,
    options?: CallOptions,
  ): Promise<Descriptor> {
    options?.signal?.throwIfAborted();
    let descriptor;
    try {
      parseDigest(reference);
      descriptor = { digest: reference, mediaType: "", size: -1 };
    } catch {
      descriptor = undefined;
    }
    if (descriptor !== undefined && this.#shared) {
      // Only what index.json names is this layout's, with the media type it was pushed with.
      const entry = (await this.readIndex()).manifests.findLast((e) =>
        e.digest === reference
      );
      if (entry === undefined) {
        throw new Deno.errors.NotFound(
          `Cannot find "${reference}" in OCI layout ${this.root}: index.json does not name it`,
        );
      }
      descriptor = entry;
    }
    if (descriptor === undefined) {
      descriptor = await this.tagged(reference);
      if (descriptor === undefined) {
        throw new Deno.errors.NotFound(
          `Cannot find "${reference}" in OCI layout ${this.root}: no such tag in index.json`,
        );
      }
    }
    const path = this.blobPath(descriptor.digest);
    const context = `Cannot read manifest ${path}`;
    const info = await Deno.stat(path);
    if (info.size > MAX_MANIFEST_SIZE) {
      throw new ManifestError(
        `${context}: the manifest is larger than ${MAX_MANIFEST_SIZE} bytes`,
      );
    }
    const bytes = await Deno.readFile(path);
    const digest = digestOf(bytes, parseDigest(descriptor.digest).algorithm);
    if (digest !== descriptor.digest) {
      throw new DigestMismatchError(descriptor.digest, {
        digest,
        size: bytes.byteLength,
      }, { context: path });
    }
    const parsed = parseManifest(bytes, descriptor.mediaType, {
      lenient: true,
      context,
    });
    return { mediaType: parsed.mediaType, digest, size: bytes.byteLength };
  }

  /**
   * The tags `index.json` names, in its order.
   *
   * @param options A signal.
   * @returns The tags.
   */
  async listTags(options?: CallOptions): Promise<string[]> {
    options?.signal?.throwIfAborted();
    const index = await this.readIndex();
    return index.manifests.flatMap((entry) => {
      const name = entry.annotations?.[REF_NAME_ANNOTATION];
      return name === undefined ? [] : [name];
    });
  }

  /**
   * Stores a stream whose digest is not known up front: hashed while it is written to a locked
   * temporary file (the two-buffer writer, synced), then renamed under its digest and the
   * directory synced. On a failure or an abort nothing is kept.
   *
   * @param stream The bytes.
   * @param mediaType The media type of the descriptor returned.
   * @param options A signal; `sync: false` skips the file's syncs (for what can be made again,
   * like a layer `createLayer` packs: still renamed whole into place); `onConsumed` is told
   * about each chunk once it is copied out (a caller that owns them may free them then).
   * @returns The blob's descriptor (sha256).
   */
  async ingest(
    stream: ReadableStream<Uint8Array>,
    mediaType: string,
    options: CallOptions & {
      sync?: boolean;
      onConsumed?: (chunk: Uint8Array) => void;
    } = {},
  ): Promise<Descriptor> {
    const { signal } = options;
    const dir = join(this.#blobs, "sha256");
    await Deno.mkdir(dir, { recursive: true });
    const hashing = new DigestStream();
    const hashed = stream.pipeThrough(hashing);
    const { temp, file, lock } = await createTemporary(join(dir, "ingest"))
      .catch(async (error) => {
        await hashed.cancel().catch(() => {});
        throw error;
      });
    try {
      await writeStreamToFile(hashed, file, {
        sync: options.sync === false ? undefined : () => lock.syncData(),
        signal,
        onConsumed: options.onConsumed,
      });
      file.close();
      signal?.throwIfAborted();
      const { digest, size } = await hashing.result;
      await Deno.rename(temp, this.blobPath(digest));
      if (options.sync !== false) await syncDirectory(dir);
      return { mediaType, digest, size };
    } catch (error) {
      try {
        file.close();
      } catch {
        // Already closed.
      }
      await Deno.remove(temp).catch(() => {});
      await hashed.cancel().catch(() => {});
      throw signal?.aborted ? signal.reason : error;
    } finally {
      lock.close();
    }
  }

  /**
   * Removes a manifest or index: its entries in `index.json` (tags included) and, unless the
   * blobs are shared, its file; or a blob's file (not in a layout of shared blobs, where other
   * layouts may need it). Blobs the removed manifest pointed to stay until a garbage
   * collection.
   *
   * @param descriptor What to remove; its media type says whether it is a manifest.
   * @param options A signal.
   * @returns False when the layout did not hold it.
   * @throws {Error} For a blob of a layout whose blobs are shared.
   */
  async delete(
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<boolean> {
    options?.signal?.throwIfAborted();
    const removeFile = async () => {
      try {
        await Deno.remove(this.blobPath(descriptor.digest));
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw error;
      }
    };
    if (!isManifestOrIndex(descriptor.mediaType)) {
      if (this.#shared) {
        throw new Error(
          `Cannot delete blob ${descriptor.digest} of OCI layout ${this.root}: its blobs are shared with other layouts`,
        );
      }
      return await removeFile();
    }
    const entered = await this.#updateIndex((entries) => {
      const manifests = entries.filter((entry) =>
        entry.digest !== descriptor.digest
      );
      return { manifests, result: manifests.length < entries.length };
    });
    if (this.#shared) return entered;
    return (await removeFile()) || entered;
  }

  /**
   * Removes a tag from `index.json`; the manifest stays there untagged (by digest) unless
   * another entry names it.
   *
   * @param tag The tag.
   * @param options A signal.
   * @returns False when no such tag was there.
   */
  untag(tag: string, options?: CallOptions): Promise<boolean> {
    options?.signal?.throwIfAborted();
    return this.#updateIndex((entries) => {
      const manifests = entries.filter((entry) =>
        entry.annotations?.[REF_NAME_ANNOTATION] !== tag
      );
      const removed = entries.filter((entry) => !manifests.includes(entry));
      for (const entry of removed) {
        if (!manifests.some((m) => m.digest === entry.digest)) {
          const { [REF_NAME_ANNOTATION]: _, ...rest } = entry.annotations ??
            {};
          const { annotations: _a, ...descriptor } = entry;
          manifests.push(
            Object.keys(rest).length
              ? { ...descriptor, annotations: rest }
              : descriptor,
          );
        }
      }
      return { manifests, result: removed.length > 0 };
    });
  }

  /**
   * The manifests `index.json` names whose `subject` has this digest, in its order.
   *
   * @param subject The subject's digest.
   * @param options The artifact type wanted, and a signal.
   * @returns Their descriptors, with `artifactType` and annotations.
   */
  async referrers(
    subject: string,
    options: ReferrersOptions = {},
  ): Promise<Descriptor[]> {
    options.signal?.throwIfAborted();
    const seen = new Set<string>();
    const found: Descriptor[] = [];
    for (const entry of (await this.readIndex()).manifests) {
      if (seen.has(entry.digest)) continue;
      seen.add(entry.digest);
      let bytes;
      try {
        bytes = await Deno.readFile(this.blobPath(entry.digest));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        throw error;
      }
      const referrer = referrerOf(
        { ...entry, size: bytes.byteLength },
        bytes,
        subject,
        options.artifactType,
      );
      if (referrer !== undefined) found.push(referrer);
    }
    return found;
  }

  /**
   * Starts an upload in pieces: a file under `.uploads` in the layout's directory, opened only
   * while a piece is appended, synced as it grows, renamed into place by the commit.
   *
   * @param options A signal.
   * @returns The upload.
   */
  startUpload(options?: CallOptions): Promise<BlobUpload> {
    options?.signal?.throwIfAborted();
    return fileUpload(
      join(this.root, ".uploads"),
      (digest) => this.blobPath(digest),
    );
  }
}

/**
 * Opens an OCI image layout, creating the directory, `oci-layout` and an empty `index.json`
 * when they are missing.
 *
 * @param root The directory.
 * @param options A blob directory shared with other layouts, which `blobs` is made to link to.
 * @returns The layout.
 * @throws {SyntaxError} When the directory holds an `oci-layout` of another version.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLayout } from "./layout_store.ts";
 * const dir = await Deno.makeTempDir();
 * const layout = await openLayout(dir);
 * assert.deepEqual((await layout.readIndex()).manifests, []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openLayout(
  root: string,
  options: LayoutOptions = {},
): Promise<OciLayout> {
  const blobs = options.blobs ?? join(root, "blobs");
  await Deno.mkdir(join(blobs, "sha256"), { recursive: true });
  if (options.blobs !== undefined) {
    await Deno.mkdir(root, { recursive: true });
    const link = join(root, "blobs");
    const found = await Deno.lstat(link).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    });
    if (found === undefined) {
      await Deno.symlink(relative(root, blobs), link);
    }
  }
  // What a killed writer left behind (live writers hold a lock on their files).
  await removeAbandonedTemporaries(join(blobs, "sha256"));
  await removeAbandonedTemporaries(root);
  const marker = join(root, "oci-layout");
  if (await statOrUndefined(marker)) {
    const text = await Deno.readTextFile(marker);
    let version: unknown;
    try {
      version = JSON.parse(text).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== "1.0.0") {
      throw new SyntaxError(
        `Cannot open OCI layout ${root}: oci-layout says imageLayoutVersion ${
          JSON.stringify(version)
        }, expected "1.0.0"`,
      );
    }
  } else {
    await writeFileAtomic(marker, new TextEncoder().encode(LAYOUT_VERSION));
  }
  const indexPath = join(root, "index.json");
  if (!(await statOrUndefined(indexPath))) {
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [],
    };
    await writeFileAtomic(
      indexPath,
      new TextEncoder().encode(JSON.stringify(index)),
    );
  }
  return new OciLayout(root, options);
}

/**
 * Opens (creating when missing) an OCI image layout as a {@linkcode Store}: the layout itself.
 *
 * @param layout The layout, or its directory.
 * @returns The layout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutStore } from "./layout_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await layoutStore(dir);
 * const descriptor = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await store.push(descriptor, bytesSource("x"));
 * assert.ok(await store.exists(descriptor));
 * assert.deepEqual(await store.listTags(), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function layoutStore(
  layout: OciLayout | string,
): Promise<OciLayout> {
  return typeof layout === "string" ? await openLayout(layout) : layout;
}
