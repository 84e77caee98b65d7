/**
 * Copies between any two stores: registry to registry, registry to layout, layout to registry.
 * Blobs first, then manifests, then the index, so that a reader never sees a manifest whose
 * blobs are missing.
 *
 * @module
 */
import { tapBytes } from "../io/bytes.ts";
import { type Descriptor, successors } from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import {
  formatPlatform,
  hostPlatform,
  type Platform,
} from "../oci/platform.ts";
import { IndexDepthError } from "../oci/parse_manifest.ts";
import {
  type BlobSource,
  bytesSource,
  fileSource,
} from "../transport/request_body.ts";
import type { OciLayout } from "../store/layout_store.ts";
import {
  type FetchedManifest,
  hasLocalBlobs,
  isManifestOrIndex,
  isMounter,
  type Mounter,
  type Store,
} from "../store/store.ts";
import { retryTransient } from "../transport/transient.ts";
import { openOnRead } from "../io/bytes.ts";
import type { ImageConfig, ImageManifest } from "../oci/manifest.ts";
import { readConfig, readManifest, resolveImage } from "./resolve.ts";
import { type CopyShare, shareManifestPush } from "./copy_share.ts";

/**
 * Where one blob of a copy stands: `waiting` for its turn, `exists` (the target had it),
 * `mounted` (a registry took it from another repository, no bytes sent), `downloading` (into a
 * layout or memory) or `uploading` (to a registry) with bytes counted, `extracting` (a pull
 * unpacking a layer), `done`. A retry reports the moving state again from 0 bytes.
 */
export type BlobState =
  | "waiting"
  | "exists"
  | "mounted"
  | "downloading"
  | "uploading"
  | "extracting"
  | "done";

/** How far one blob has come, with its state. */
export interface BlobProgress {
  /** Bytes moved so far in this attempt (the size once `done` or `exists`). */
  readonly done: number;
  /** The blob's size. */
  readonly total: number;
  /** The attempt, from 1: a new one restarts `done` at 0. */
  readonly attempt: number;
}

/**
 * Told when a blob's state changes and as its bytes move (at most once per chunk).
 *
 * @example Count the blobs a copy sent
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BlobState, copyBlobs } from "./copy.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const source = memoryStore();
 * const blob = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await source.push(blob, bytesSource("x"));
 * const states: BlobState[] = [];
 * await copyBlobs(source, memoryStore(), [blob], { onBlob: (_, state) => states.push(state) });
 * assert.deepEqual(states, ["waiting", "downloading", "downloading", "done"]);
 * ```
 */
export type OnBlob = (
  descriptor: Descriptor,
  state: BlobState,
  progress: BlobProgress,
) => void;

/** Options of {@linkcode copyImage}. */
export interface CopyOptions {
  /**
   * The platform to copy out of an index, or `"all"` to copy the whole index.
   * @default {hostPlatform()}
   */
  readonly platform?: Platform | "all";
  /**
   * Blobs moved at the same time.
   * @default {4}
   */
  readonly concurrency?: number;
  /**
   * The tag to write at the destination.
   * @default {the source reference when it is a tag}
   */
  readonly tag?: string;
  /** How many levels of nested index to follow. @default {3} */
  readonly maxDepth?: number;
  /**
   * Receives a line per image or index copied, and one per blob copied when there is no
   * `onBlob` (a display given `onBlob` tells of the blobs itself).
   */
  readonly log?: (line: string) => void;
  /**
   * A stage to pass blobs through: verified into this layout first (reused when already
   * there), then uploaded from it. Without one, bytes stream straight from source to target.
   */
  readonly cache?: OciLayout;
  /**
   * Copies of one blob in all when one fails in a way another may not (connection lost, bytes
   * damaged on the way, upload session lost); each starts from the source again.
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before a blob's copy starts again. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
  /** Told of each blob's state and bytes, for a progress display. */
  readonly onBlob?: OnBlob;
  /**
   * Cancels the copy: every transfer in progress stops at once (downloads close their
   * connection, upload sessions are cancelled), nothing partial is kept in a layout target or
   * the cache, and the copy rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
  /**
   * Writes shared with other copies to the same target running at the same time (see
   * `createCopyShare`): a blob or manifest one of them writes is not written at once
   * by another. `copyAllTags` passes one to its tags.
   */
  readonly share?: CopyShare;
}

/** What a copy did. */
export interface CopyResult {
  /** The descriptor of what was tagged at the destination (a manifest or an index). */
  readonly descriptor: Descriptor;
  /** Blobs the destination lacked: moved, or mounted (see `blobsMounted`). */
  readonly blobsCopied: number;
  /** Of `blobsCopied`, the blobs the registry mounted from another repository (no bytes sent). */
  readonly blobsMounted: number;
  /** Blobs the destination already had. */
  readonly blobsSkipped: number;
}

/**
 * Runs tasks with at most `limit` at once; rejects with the first failure, once every task
 * started has ended (none is still writing); after a failure or an abort no task starts.
 */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let failed = false;
  const workers = Array.from(
    { length: Math.max(1, Math.min(limit, items.length)) },
    async () => {
      while (next < items.length && !failed) {
        signal?.throwIfAborted();
        try {
          await task(items[next++]);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    },
  );
  const results = await Promise.allSettled(workers);
  const failure = results.find((r) => r.status === "rejected");
  if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
}

/** Where the bytes of one blob's copy come from, and whether they check themselves. */
interface CopySource {
  readonly source: BlobSource;
  /** The stream is {@linkcode Store.fetch}'s, which errors unless every byte matched. */
  readonly verified: boolean;
}

/**
 * The bytes of a blob as the copy reads them: a file the source store verified when it wrote
 * it, sent as it is (the target checks it); else a stream out of `store.fetch` (verified while
 * it streams), opened on the first read so that a mount that needs no bytes opens nothing, and
 * opened again by each retry.
 */
async function copySource(
  store: Store,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): Promise<CopySource> {
  if (hasLocalBlobs(store)) {
    return {
      source: await store.blobSource(descriptor, { signal }),
      verified: false,
    };
  }
  return {
    source: {
      size: descriptor.size,
      open: () =>
        openOnRead(() => store.fetch(descriptor, { signal }), { signal }),
    },
    verified: true,
  };
}

/**
 * A copy source whose every opening (each attempt) reports `state` from 0 bytes, then each
 * chunk read; without `onBlob`, the source as it is.
 */
function counted(
  from: CopySource,
  descriptor: Descriptor,
  state: BlobState,
  onBlob: OnBlob | undefined,
): CopySource {
  if (onBlob === undefined) return from;
  let attempt = 0;
  const total = descriptor.size;
  return {
    verified: from.verified,
    source: {
      size: from.source.size,
      open() {
        const current = ++attempt;
        let done = 0;
        onBlob(descriptor, state, { done, total, attempt: current });
        // A byte stream still (read into the reader's own buffers, 1 MiB at a time): a
        // TransformStream here queued default-stream chunks and doubled a pull's peak RSS.
        return tapBytes(from.source.open(), (bytes) => {
          done += bytes;
          onBlob(descriptor, state, { done, total, attempt: current });
        });
      },
    },
  };
}

/**
 * Copies one blob, and starts it again from the source when it fails in a way another attempt
 * may not (connection lost, bytes damaged or cut on the way, upload session lost): the one
 * retry of a blob's transfer. Before starting again it asks whether the failed attempt landed
 * after all. The target is told the bytes are verified when they come from `source.fetch`, so
 * a layout or memory target does not hash them a second time. Answers whether a registry
 * mounted the blob (no bytes sent).
 */
async function copyBlob(
  source: Store,
  target: Store,
  descriptor: Descriptor,
  from: CopySource,
  mounter: (Store & Mounter) | undefined,
  options: Pick<CopyOptions, "attempts" | "onRetry" | "signal">,
): Promise<boolean> {
  const { signal } = options;
  return await retryTransient(async (attempt) => {
    // A failed attempt may have landed before its answer was lost.
    if (
      attempt > 1 &&
      await target.exists(descriptor, { signal }).catch(() => false)
    ) {
      return false;
    }
    if (mounter !== undefined) {
      return await mounter.mount(descriptor, source, {
        fallback: from.source,
        signal,
      });
    }
    await target.push(descriptor, from.source, {
      signal,
      verified: from.verified,
    });
    return false;
  }, options);
}

/**
 * Copies the blobs of one image that the destination lacks: every blob is checked at the
 * destination in parallel, and only the missing ones move (mounted when both stores are
 * repositories of the same registry). Each copy is verified (the source's stream checks
 * itself and the target is told so; a file sent as it is gets checked by the target), and
 * starts again from the source when it fails in a way another attempt may not.
 *
 * @param source Where the blobs are.
 * @param target Where they go.
 * @param blobs The descriptors to copy.
 * @param options Concurrency, log, cache, attempts and an abort signal.
 * @returns How many blobs the target lacked (`copied`, of which `mounted` were mounted rather
 * than sent) and how many it had (`skipped`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyBlobs } from "./copy.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const source = memoryStore();
 * const blob = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await source.push(blob, bytesSource("x"));
 * const target = memoryStore();
 * assert.deepEqual(await copyBlobs(source, target, [blob]), { copied: 1, mounted: 0, skipped: 0 });
 * assert.deepEqual(await copyBlobs(source, target, [blob]), { copied: 0, mounted: 0, skipped: 1 });
 * ```
 */
export async function copyBlobs(
  source: Store,
  target: Store,
  blobs: readonly Descriptor[],
  options: Pick<
    CopyOptions,
    | "concurrency"
    | "log"
    | "cache"
    | "attempts"
    | "onRetry"
    | "onBlob"
    | "signal"
    | "share"
  > = {},
): Promise<{ copied: number; mounted: number; skipped: number }> {
  const { signal, cache, onBlob, share } = options;
  let mounted = 0;
  let skipped = 0;
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  // A blob another copy to this target is checking or moving is awaited, not moved twice.
  const theirs = unique.filter((b) => share?.blobs.has(b.digest));
  const mine = unique.filter((b) => !share?.blobs.has(b.digest));
  const settle = new Map<string, PromiseWithResolvers<void>>();
  for (const blob of share === undefined ? [] : mine) {
    const claim = Promise.withResolvers<void>();
    claim.promise.catch(() => {});
    settle.set(blob.digest, claim);
    share?.blobs.set(blob.digest, claim.promise);
  }
  const settled = (digest: string, error?: unknown) => {
    const claim = settle.get(digest);
    if (claim === undefined) return;
    settle.delete(digest);
    if (error === undefined) return claim.resolve();
    share?.blobs.delete(digest);
    claim.reject(error);
  };
  if (onBlob !== undefined) {
    for (const blob of theirs) {
      onBlob(blob, "waiting", { done: 0, total: blob.size, attempt: 1 });
    }
  }
  const awaitTheirs = async () => {
    let copied = 0;
    for (const blob of theirs) {
      try {
        await share?.blobs.get(blob.digest);
        skipped++;
        onBlob?.(blob, "exists", {
          done: blob.size,
          total: blob.size,
          attempt: 1,
        });
      } catch {
        // The other copy failed: this one copies the blob itself.
        const counts = await copyBlobs(source, target, [blob], options);
        copied += counts.copied;
        mounted += counts.mounted;
        skipped += counts.skipped;
      }
    }
    return copied;
  };
  const copyMine = async () => {
    try {
      return await copyMissing(mine);
    } catch (error) {
      for (const digest of [...settle.keys()]) settled(digest, error);
      throw error;
    }
  };
  const copyMissing = async (checked: Descriptor[]) => {
    const present = await Promise.all(
      checked.map((b) => target.exists(b, { signal })),
    );
    const missing = checked.filter((_, i) => !present[i]);
    skipped += checked.length - missing.length;
    for (const [i, blob] of checked.entries()) {
      if (present[i]) settled(blob.digest);
      onBlob?.(blob, present[i] ? "exists" : "waiting", {
        done: present[i] ? blob.size : 0,
        total: blob.size,
        attempt: 1,
      });
    }
    const mounter = isMounter(target) && target.canMount(source)
      ? target
      : undefined;
    const sourceOf = async (descriptor: Descriptor): Promise<CopySource> => {
      if (cache === undefined || mounter !== undefined) {
        return await copySource(source, descriptor, signal);
      }
      // Through the cache: verified into it first (reused when there), then sent from its file.
      if (!(await cache.exists(descriptor, { signal }))) {
        await copyBlob(
          source,
          cache,
          descriptor,
          counted(
            await copySource(source, descriptor, signal),
            descriptor,
            "downloading",
            onBlob,
          ),
          undefined,
          options,
        );
      }
      return {
        source: await fileSource(cache.blobPath(descriptor.digest)),
        verified: false,
      };
    };
    // A registry (the stores that mount) is uploaded to; a layout or memory, downloaded into.
    const moving = isMounter(target) ? "uploading" : "downloading";
    await eachLimited(missing, options.concurrency ?? 4, async (descriptor) => {
      const wasMounted = await copyBlob(
        source,
        target,
        descriptor,
        counted(await sourceOf(descriptor), descriptor, moving, onBlob),
        mounter,
        options,
      );
      settled(descriptor.digest);
      if (wasMounted) mounted++;
      onBlob?.(descriptor, wasMounted ? "mounted" : "done", {
        done: descriptor.size,
        total: descriptor.size,
        attempt: 1,
      });
      // With onBlob, a display tells of each blob: one line per blob, not two.
      if (onBlob === undefined) {
        options.log?.(`Copied ${descriptor.digest} to ${target.name}`);
      }
    }, signal);
    return missing.length;
  };
  const [copiedMine, copiedTheirs] = await Promise.all([
    copyMine(),
    awaitTheirs(),
  ]);
  return { copied: copiedMine + copiedTheirs, mounted, skipped };
}

/**
 * Copies the layers of an image that the destination lacks and returns the image's manifest and
 * config (spack's `copy_missing_layers`, used to put new layers on a base image).
 *
 * @param source The store with the base image.
 * @param target The store that needs its layers.
 * @param reference The base image's tag or digest in `source`.
 * @param options Platform, concurrency, log and an abort signal.
 * @returns The base manifest, its config, and the manifest's descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyMissingLayers } from "./copy.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const base = memoryStore();
 * const put = async (bytes: Uint8Array, mediaType: string, tag?: string) => {
 *   const descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
 *   await base.push(descriptor, bytesSource(bytes), { tag });
 *   return descriptor;
 * };
 * const layer = await put(new Uint8Array([1, 2, 3]), "application/vnd.oci.image.layer.v1.tar+gzip");
 * const config = await put(new TextEncoder().encode('{"os":"linux","architecture":"amd64"}'), "application/vnd.oci.image.config.v1+json");
 * await put(new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layer] })), "application/vnd.oci.image.manifest.v1+json", "22.04");
 * const target = memoryStore();
 * const result = await copyMissingLayers(base, target, "22.04");
 * assert.equal(result.config.os, "linux");
 * assert.ok(await target.exists(layer));
 * ```
 */
export async function copyMissingLayers(
  source: Store,
  target: Store,
  reference: string,
  options: Omit<CopyOptions, "platform" | "tag"> & { platform?: Platform } = {},
): Promise<
  { manifest: ImageManifest; config: ImageConfig; descriptor: Descriptor }
> {
  const { manifest } = await resolveImage(source, reference, options);
  const document = manifest.document;
  await copyBlobs(source, target, document.layers, options);
  return {
    manifest: document,
    config: await readConfig(source, document.config, options),
    descriptor: manifest.descriptor,
  };
}

/**
 * Copies an image (one platform, or `"all"` with its index) between any two stores: blobs
 * first, then each manifest by digest, then the tag, so a reader never sees a manifest whose
 * blobs are missing. Repositories of the same registry mount instead of moving bytes.
 *
 * @param source Where the image is.
 * @param target Where it goes.
 * @param reference The tag or digest in `source`.
 * @param options Platform or `"all"`, tag at the destination, concurrency, log, and an abort
 * signal (it rejects with the signal's reason; nothing partial is kept).
 * @returns What was tagged and how many blobs moved.
 *
 * @example
 * ```ts ignore
 * await copyImage(remoteStore(parseReference("ghcr.io/a/b")), await layoutStore("cache"), "v1", { platform: "all" });
 * ```
 */
export async function copyImage(
  source: Store,
  target: Store,
  reference: string,
  options: CopyOptions = {},
): Promise<CopyResult> {
  try {
    return await copyImageOnce(source, target, reference, options);
  } catch (error) {
    // What an abort broke says so with the signal's reason, whichever transfer it hit first.
    throw options.signal?.aborted ? options.signal.reason : error;
  }
}

async function copyImageOnce(
  source: Store,
  target: Store,
  reference: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const tag = options.tag ??
    (/^[a-z0-9]+:[0-9a-f]+$/.test(reference) ? undefined : reference);
  const label = `${source.name}:${reference}`;
  if (options.platform === "all") {
    const top = await readManifest(source, reference, options);
    return await copyFetched(source, target, top, label, {
      ...options,
      tag,
    });
  }
  const platform = options.platform ?? hostPlatform();
  const { manifest } = await resolveImage(source, reference, {
    ...options,
    platform,
  });
  const result = await copyFetched(source, target, manifest, label, {
    ...options,
    tag,
  });
  options.log?.(
    `Copied ${
      formatPlatform(platform)
    } image ${manifest.descriptor.digest} to ${target.name}`,
  );
  return result;
}

/**
 * Copies the graph under a manifest or index between any two stores, over
 * {@linkcode successors}: each image's blobs (the ones the target lacks, mounted when it can),
 * then its manifest by digest, nested indexes likewise, and the root last (under `options.tag`
 * when given), so a reader never sees a manifest whose blobs are missing.
 *
 * @param source Where the graph is.
 * @param target Where it goes.
 * @param root The manifest or index at the top.
 * @param options Tag, concurrency, cache, attempts, depth, log and an abort signal.
 * @returns What was stored at the top and how many blobs moved.
 * @throws {IndexDepthError} When indexes nest deeper than `options.maxDepth`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyGraph } from "./copy.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const source = memoryStore();
 * const config = new TextEncoder().encode("{}");
 * const configDescriptor = { mediaType: "application/vnd.oci.image.config.v1+json", digest: digestOf(config), size: config.byteLength };
 * await source.push(configDescriptor, bytesSource(config));
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: configDescriptor, layers: [] }));
 * const root = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(bytes), size: bytes.byteLength };
 * await source.push(root, bytesSource(bytes));
 * const target = memoryStore();
 * const result = await copyGraph(source, target, root, { tag: "v1" });
 * assert.equal(result.blobsCopied, 1);
 * assert.equal((await target.resolve("v1")).digest, root.digest);
 * ```
 */
export async function copyGraph(
  source: Store,
  target: Store,
  root: Descriptor,
  options: Omit<CopyOptions, "platform"> = {},
): Promise<CopyResult> {
  try {
    const top = await readManifest(source, root, options);
    return await copyFetched(
      source,
      target,
      top,
      `${source.name}:${root.digest}`,
      options,
    );
  } catch (error) {
    throw options.signal?.aborted ? options.signal.reason : error;
  }
}

/** The walk of {@linkcode copyGraph} from a root already fetched. */
async function copyFetched(
  source: Store,
  target: Store,
  top: FetchedManifest,
  label: string,
  options: Omit<CopyOptions, "platform">,
): Promise<CopyResult> {
  const maxDepth = options.maxDepth ?? 3;
  let copied = 0;
  let mounted = 0;
  let skipped = 0;
  const visit = async (fetched: FetchedManifest, depth: number) => {
    const down = successors(fetched.document);
    if (isIndexMediaType(fetched.descriptor.mediaType)) {
      if (depth >= maxDepth) throw new IndexDepthError(label, maxDepth);
      for (const entry of down) {
        if (!isManifestOrIndex(entry.mediaType)) continue;
        await visit(
          await readManifest(source, entry.digest, options),
          depth + 1,
        );
      }
    } else {
      // A subject is a manifest of its own graph: not copied with this one.
      const counts = await copyBlobs(
        source,
        target,
        down.filter((d) => !isManifestOrIndex(d.mediaType)),
        options,
      );
      copied += counts.copied;
      mounted += counts.mounted;
      skipped += counts.skipped;
    }
    if (fetched !== top) {
      await pushManifest(target, fetched, undefined, options);
    }
  };
  await visit(top, 0);
  await pushManifest(target, top, options.tag, options);
  return {
    descriptor: top.descriptor,
    blobsCopied: copied,
    blobsMounted: mounted,
    blobsSkipped: skipped,
  };
}

/**
 * Stores a manifest as fetched, under its digest and the tag when given; once only, and not at
 * the same time as another push of it, among the copies sharing `options.share`.
 */
async function pushManifest(
  target: Store,
  fetched: FetchedManifest,
  tag: string | undefined,
  options: Pick<CopyOptions, "signal" | "share">,
): Promise<void> {
  const { signal, share } = options;
  await shareManifestPush(
    share,
    fetched.descriptor.digest,
    tag !== undefined,
    () =>
      target.push(fetched.descriptor, bytesSource(fetched.bytes), {
        tag,
        signal,
      }),
  );
}
