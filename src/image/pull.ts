/**
 * Pulling images: resolve to a platform, stage the config and layers (verified, reused), check
 * each layer against the config's `diff_ids`, and extract them in order.
 *
 * @module
 */
import type { ImageReference } from "../oci/reference.ts";
import { formatReference } from "../oci/reference.ts";
import { getManifestAndConfig } from "../store/remote/manifests.ts";
import type { RegistryOptions } from "../store/remote/blobs.ts";
import type { ProgressOptions } from "../store/remote/progress.ts";
import { type OciLayout, openLayout } from "../store/layout_store.ts";
import { stageBlob } from "../store/layout_store.ts";
import { extractLayer } from "../layer/extract_layer.ts";
import type {
  Descriptor,
  ImageConfig,
  ImageManifest,
} from "../oci/manifest.ts";
import {
  DOCKER_LAYER_GZIP_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_LAYER_TAR_MEDIA_TYPE,
} from "../oci/media_types.ts";
import type { Platform } from "../oci/platform.ts";
import { DigestMismatchError, parseDigest } from "../oci/digest.ts";
import { hostPlatform } from "../oci/platform.ts";
import { fetchBytes, type Store } from "../store/store.ts";
import { copyBlobs, resolveImage } from "./copy.ts";

/** Options of {@linkcode pullImage}. */
export interface PullImageOptions extends RegistryOptions, ProgressOptions {
  /** The platform to pull from an index. @default {hostPlatform()} */
  readonly platform?: Platform;
  /** The stage (an OCI layout, or its directory) that caches blobs. */
  readonly cache: OciLayout | string;
  /** Told about skipped entries. */
  readonly onWarning?: (message: string) => void;
  /**
   * Downloads of a blob in all when its bytes arrive damaged or cut short.
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before a blob's download starts again. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/** An image in a store (a layout, memory): the store and a tag or digest in it. */
export interface StoreImage {
  /** Where the image is. */
  readonly store: Store;
  /** Its tag or digest there. */
  readonly reference: string;
}

/** The manifest for the platform and its config, out of any store. */
async function manifestAndConfigOf(
  source: StoreImage,
  options: PullImageOptions,
): Promise<
  {
    manifest: {
      descriptor: Descriptor;
      bytes: Uint8Array;
      document: ImageManifest;
    };
    config: ImageConfig;
  }
> {
  const { manifest } = await resolveImage(
    source.store,
    source.reference,
    options.platform ?? hostPlatform(),
    3,
    options.signal,
  );
  const document = manifest.document as ImageManifest;
  const bytes = await fetchBytes(source.store, document.config, {
    signal: options.signal,
  });
  return {
    manifest: { ...manifest, document },
    config: JSON.parse(new TextDecoder().decode(bytes)),
  };
}

function isDigest(reference: string): boolean {
  try {
    parseDigest(reference);
    return true;
  } catch {
    return false;
  }
}

/** What {@linkcode pullImage} did. */
export interface PullResult {
  /** The manifest that was extracted. */
  readonly manifest: ImageManifest;
  /** Its descriptor. */
  readonly descriptor: Descriptor;
  /** The image config. */
  readonly config: ImageConfig;
}

function isGzip(mediaType: string): boolean | undefined {
  if (
    mediaType === OCI_LAYER_GZIP_MEDIA_TYPE ||
    mediaType === DOCKER_LAYER_GZIP_MEDIA_TYPE
  ) return true;
  if (mediaType === OCI_LAYER_TAR_MEDIA_TYPE) return false;
  return undefined;
}

/**
 * Waits for every task, then throws the first failure: a failed pull returns only once no
 * download of it is still writing into the stage (`Promise.all` would reject while the other
 * layers' temporary files are being written).
 */
async function settleAll<T>(tasks: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/**
 * Pulls an image into a directory: resolves the index to the platform, fetches the config and
 * every layer through the stage (verified while they stream, reused when already cached),
 * checks each layer's uncompressed digest against the config's `rootfs.diff_ids`, and extracts
 * the layers in order with whiteouts applied. The manifest is stored in the stage too and
 * tagged there, so the stage is an OCI layout of what was pulled. The tag is written last, once
 * every layer is staged, verified and extracted: a pull that fails leaves the stage naming what
 * it named before (the blobs that arrived whole stay, so a rerun fetches only what is missing).
 * An abort of `options.signal` closes every download's connection at once, removes their
 * temporary files (and the file being extracted), and rejects with the signal's reason.
 *
 * @param ref The image.
 * @param target The directory to extract into.
 * @param options The stage, platform, and transport options.
 * @returns The manifest, its descriptor and the config.
 * @throws {DigestMismatchError} When a layer does not match its `diff_id`.
 *
 * @example
 * ```ts ignore
 * await pullImage(parseReference("127.0.0.1:5000/app:v1"), "rootfs", { cache: "stage" });
 * ```
 */
export async function pullImage(
  ref: ImageReference | StoreImage,
  target: string,
  options: PullImageOptions,
): Promise<PullResult> {
  try {
    return await pullImageOnce(ref, target, options);
  } catch (error) {
    throw options.signal?.aborted ? options.signal.reason : error;
  }
}

async function pullImageOnce(
  ref: ImageReference | StoreImage,
  target: string,
  options: PullImageOptions,
): Promise<PullResult> {
  const stage = typeof options.cache === "string"
    ? await openLayout(options.cache)
    : options.cache;
  const fromStore = "store" in ref ? ref : undefined;
  const name = fromStore
    ? `${fromStore.store.name}:${fromStore.reference}`
    : formatReference(ref as ImageReference);
  const { manifest, config } = fromStore
    ? await manifestAndConfigOf(fromStore, options)
    : await getManifestAndConfig(ref as ImageReference, {
      ...options,
      stage,
    });
  const layers = manifest.document.layers;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) {
    throw new SyntaxError(
      `Cannot pull ${name}: the manifest has ${layers.length} layers but the config lists ${diffIds.length} diff_ids`,
    );
  }
  const gzipped = layers.map((layer) => {
    const gzip = isGzip(layer.mediaType);
    if (gzip === undefined) {
      throw new TypeError(
        `Cannot pull ${name}: layer ${layer.digest} has media type "${layer.mediaType}", which is not supported (tar or tar+gzip)`,
      );
    }
    return gzip;
  });
  let paths: string[];
  if (fromStore) {
    // Pull from a store = copy the layers into the stage (verified, reused when there).
    await copyBlobs(fromStore.store, stage, layers, {
      signal: options.signal,
      attempts: options.attempts,
      onRetry: options.onRetry,
    });
    paths = layers.map((layer) => stage.blobPath(layer.digest));
  } else {
    paths = await settleAll(
      layers.map((layer) =>
        stageBlob(stage, ref as ImageReference, layer, options)
      ),
    );
  }
  for (const [i, layer] of layers.entries()) {
    const result = await extractLayer(
      (await Deno.open(paths[i])).readable,
      target,
      {
        gzip: gzipped[i],
        onWarning: options.onWarning,
        signal: options.signal,
      },
    );
    if (result.uncompressedDigest !== diffIds[i]) {
      throw new DigestMismatchError(diffIds[i], {
        digest: result.uncompressedDigest,
        size: layer.size,
      }, { context: `the uncompressed layer ${layer.digest}` });
    }
  }
  if (!(await stage.hasBlob(manifest.descriptor.digest))) {
    await stage.writeBlob(
      manifest.descriptor.digest,
      new Response(manifest.bytes as Uint8Array<ArrayBuffer>).body!,
      { size: manifest.descriptor.size, signal: options.signal },
    );
  }
  const tag = fromStore
    ? (isDigest(fromStore.reference) ? undefined : fromStore.reference)
    : (ref as ImageReference).tag;
  if (tag !== undefined) await stage.tag(manifest.descriptor, tag);
  return {
    manifest: manifest.document,
    descriptor: manifest.descriptor,
    config,
  };
}
