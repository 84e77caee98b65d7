/**
 * Copies between any two stores: registry to registry, registry to layout, layout to registry.
 * Blobs first, then manifests, then the index, so that a reader never sees a manifest whose
 * blobs are missing.
 *
 * @module
 */
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  successors,
} from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import {
  formatPlatform,
  hostPlatform,
  type Platform,
} from "../oci/platform.ts";
import { selectPlatform } from "../store/remote/manifests.ts";
import { IndexDepthError, MAX_MANIFEST_SIZE } from "../oci/parse_manifest.ts";
import {
  type BlobSource,
  bytesSource,
  fileSource,
} from "../transport/request_body.ts";
import type { OciLayout } from "../store/layout_store.ts";
import {
  type FetchedManifest,
  fetchManifest,
  isManifestOrIndex,
  isMounter,
  type Store,
} from "../store/store.ts";
import { retryTransient } from "../transport/transient.ts";
import { openVerifiedStream } from "../oci/digest.ts";

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
  /** Receives one line per blob copied, mounted or skipped. */
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
  /**
   * Cancels the copy: every transfer in progress stops at once (downloads close their
   * connection, upload sessions are cancelled), nothing partial is kept in a layout target or
   * the cache, and the copy rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
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

/**
 * A source that streams a blob out of a store each time it is opened: registry to registry
 * copies pass the bytes through without a local copy, and a retry downloads again.
 */
function streamingSource(
  store: Store,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): BlobSource {
  return {
    size: descriptor.size,
    open(): ReadableStream<Uint8Array> {
      // Opened on the first read; a byte stream that a layout target does not hash again.
      return openVerifiedStream(
        () => store.fetch(descriptor, { signal }),
        descriptor.digest,
        { size: descriptor.size, context: store.name, signal },
      );
    },
  };
}

/**
 * Copies the blobs of one image that the destination lacks: every blob is checked at the
 * destination in parallel, and only the missing ones move (mounted when both stores are
 * repositories of the same registry).
 *
 * @param source Where the blobs are.
 * @param target Where they go.
 * @param blobs The descriptors to copy.
 * @param options Concurrency, log, cache, attempts and an abort signal.
 * @returns How many blobs the target lacked (`copied`, of which `mounted` were mounted rather
 * than sent) and how many it had (`skipped`).
 *
 * @example
 * ```ts ignore
 * await copyBlobs(remoteStore(src), remoteStore(dst), manifest.layers);
 * ```
 */
export async function copyBlobs(
  source: Store,
  target: Store,
  blobs: readonly Descriptor[],
  options: Pick<
    CopyOptions,
    "concurrency" | "log" | "cache" | "attempts" | "onRetry" | "signal"
  > = {},
): Promise<{ copied: number; mounted: number; skipped: number }> {
  const { signal } = options;
  let mounted = 0;
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const present = await Promise.all(
    unique.map((b) => target.exists(b, { signal })),
  );
  const missing = unique.filter((_, i) => !present[i]);
  const mounter = isMounter(target) && target.canMount(source)
    ? target
    : undefined;
  const { cache } = options;
  const sourceOf = async (descriptor: Descriptor): Promise<BlobSource> => {
    if (cache === undefined || mounter !== undefined) {
      return streamingSource(source, descriptor, signal);
    }
    if (!(await cache.hasBlob(descriptor.digest, { size: descriptor.size }))) {
      await retryTransient(async () => {
        await cache.writeBlob(
          descriptor.digest,
          await source.fetch(descriptor, { signal }),
          { size: descriptor.size, signal },
        );
      }, options);
    }
    return await fileSource(cache.blobPath(descriptor.digest));
  };
  await eachLimited(missing, options.concurrency ?? 4, async (descriptor) => {
    const blobSource = await sourceOf(descriptor);
    await retryTransient(async (attempt) => {
      // A failed attempt may have landed before its answer was lost.
      if (
        attempt > 1 &&
        await target.exists(descriptor, { signal }).catch(() => false)
      ) {
        return;
      }
      if (mounter !== undefined) {
        const wasMounted = await mounter.mount(descriptor, source, {
          fallback: blobSource,
          signal,
        });
        if (wasMounted) mounted++;
      } else {
        await target.push(descriptor, blobSource, { signal });
      }
    }, options);
    options.log?.(`Copied ${descriptor.digest} to ${target.name}`);
  }, signal);
  return {
    copied: missing.length,
    mounted,
    skipped: unique.length - missing.length,
  };
}

async function readConfig(
  store: Store,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): Promise<ImageConfig> {
  if (descriptor.size > MAX_MANIFEST_SIZE) {
    throw new RangeError(
      `Cannot read config ${descriptor.digest} of ${store.name}: ${descriptor.size} bytes is too large`,
    );
  }
  return JSON.parse(
    await new Response(await store.fetch(descriptor, { signal })).text(),
  );
}

/**
 * Resolves a reference in a store to one image manifest for a platform, following indexes.
 *
 * @param store Where the image is.
 * @param reference A tag or digest.
 * @param platform The platform to pick from an index.
 * @param maxDepth How many index levels to follow.
 * @param signal Cancels the requests.
 * @returns The manifest as fetched, and the index above it if any.
 * @throws {PlatformNotFoundError} When an index lacks the platform.
 * @throws {IndexDepthError} When indexes nest deeper than `maxDepth`.
 *
 * @example
 * ```ts ignore
 * const { manifest } = await resolveImage(remoteStore(ref), "v1", parsePlatform("linux/amd64"));
 * ```
 */
export async function resolveImage(
  store: Store,
  reference: string,
  platform: Platform = hostPlatform(),
  maxDepth = 3,
  signal?: AbortSignal,
): Promise<{ manifest: FetchedManifest; index?: FetchedManifest }> {
  let fetched = await fetchManifest(store, reference, { signal });
  let index: FetchedManifest | undefined;
  for (let depth = 0; isIndexMediaType(fetched.descriptor.mediaType); depth++) {
    if (depth >= maxDepth) {
      throw new IndexDepthError(`${store.name}:${reference}`, maxDepth);
    }
    const match = selectPlatform(
      fetched.document as ImageIndex,
      platform,
      `${store.name}:${reference}`,
    );
    index = fetched;
    fetched = await fetchManifest(store, match.digest, { signal });
  }
  return { manifest: fetched, index };
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
 * ```ts ignore
 * const { manifest, config } = await copyMissingLayers(remoteStore(base), remoteStore(target), "22.04");
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
  const { manifest } = await resolveImage(
    source,
    reference,
    options.platform,
    options.maxDepth,
    options.signal,
  );
  const document = manifest.document as ImageManifest;
  await copyBlobs(source, target, document.layers, options);
  return {
    manifest: document,
    config: await readConfig(source, document.config, options.signal),
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
    const top = await fetchManifest(source, reference, {
      signal: options.signal,
    });
    return await copyFetched(source, target, top, label, {
      ...options,
      tag,
    });
  }
  const platform = options.platform ?? hostPlatform();
  const { manifest } = await resolveImage(
    source,
    reference,
    platform,
    options.maxDepth,
    options.signal,
  );
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
    const top = await fetchManifest(source, root, { signal: options.signal });
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
  const { signal } = options;
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
          await fetchManifest(source, entry.digest, { signal }),
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
    if (fetched !== top) await pushManifest(target, fetched, undefined, signal);
  };
  await visit(top, 0);
  await pushManifest(target, top, options.tag, signal);
  return {
    descriptor: top.descriptor,
    blobsCopied: copied,
    blobsMounted: mounted,
    blobsSkipped: skipped,
  };
}

/** Stores a manifest as fetched, under its digest and the tag when given. */
async function pushManifest(
  target: Store,
  fetched: FetchedManifest,
  tag: string | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  await target.push(fetched.descriptor, bytesSource(fetched.bytes), {
    tag,
    signal,
  });
}
