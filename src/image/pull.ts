/**
 * Pulling images: resolve to a platform, stage the config and layers (verified, reused), check
 * each layer against the config's `diff_ids`, and extract them in order.
 *
 * @module
 */
import type { ImageReference } from "../oci/reference.ts";
import { remoteStore, type RemoteStoreOptions } from "../store/remote_store.ts";
import { type OciLayout, openLayout } from "../store/layout_store.ts";
import { extractLayer } from "../layer/extract_layer.ts";
import type {
  Descriptor,
  ImageConfig,
  ImageManifest,
} from "../oci/manifest.ts";
import { compressionOfLayer } from "../layer/compression.ts";
import type { Platform } from "../oci/platform.ts";
import { DigestMismatchError, parseDigest } from "../oci/digest.ts";
import { MAX_MANIFEST_SIZE } from "../oci/parse_manifest.ts";
import type { Store } from "../store/store.ts";
import { bytesSource } from "../transport/request_body.ts";
import { copyBlobs, type OnBlob } from "./copy.ts";
import { readConfig, resolveImage } from "./resolve.ts";
import {
  type ArtifactFileWritten,
  manifestKind,
  NotPullableError,
  writeArtifactFiles,
} from "./artifact_files.ts";

/** Options of {@linkcode pullImage}. */
export interface PullImageOptions extends RemoteStoreOptions {
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
  /**
   * Blobs downloaded at the same time.
   * @default {4}
   */
  readonly concurrency?: number;
  /**
   * Told of each blob's state and bytes: the config's and each layer's download (`waiting`,
   * `exists` when the stage had it, `downloading`), then for a layer `waiting` again until its
   * turn, `extracting`, and `done` once its `diff_id` matched.
   */
  readonly onBlob?: OnBlob;
}

/** An image in a store (a layout, memory): the store and a tag or digest in it. */
export interface StoreImage {
  /** Where the image is. */
  readonly store: Store;
  /** Its tag or digest there. */
  readonly reference: string;
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
  /** The image config (an artifact's config when it is JSON, else `{}`). */
  readonly config: ImageConfig;
  /** An image's layers were extracted, or an artifact's files written by title. */
  readonly kind: "image" | "artifact";
  /** The files an artifact pull wrote (none for an image). */
  readonly files: readonly ArtifactFileWritten[];
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
 * An artifact (a config that is not an image's, a title on every layer) is written file by
 * file instead, each under its title (see `writeArtifactFiles`), its blobs through the stage
 * as layers are (its manifest and config stored there too); a manifest that is neither
 * (spack's `index.spack`) is refused with {@linkcode NotPullableError}.
 *
 * @param ref The image.
 * @param target The directory to extract into.
 * @param options The stage, platform, and transport options.
 * @returns The manifest, its descriptor and the config.
 * @throws {DigestMismatchError} When a layer does not match its `diff_id`.
 * @throws {NotPullableError} When the manifest is neither an image nor an artifact.
 *
 * @example Pull an image (no layers here) from the in-process registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { pullImage } from "./pull.ts";
 * import { pushImage } from "./push.ts";
 * import { createRegistry } from "../server/mod.ts";
 * import { parseReference } from "../oci/reference.ts";
 * const opener = createRegistry();
 * const ref = parseReference("127.0.0.1:5000/app:v1");
 * const pushed = await pushImage(ref, { layers: [], opener, platform: { os: "linux", architecture: "amd64" } });
 * const dir = await Deno.makeTempDir();
 * const result = await pullImage(ref, `${dir}/rootfs`, { cache: `${dir}/stage`, opener, platform: { os: "linux", architecture: "amd64" } });
 * assert.equal(result.descriptor.digest, pushed.digest);
 * await Deno.remove(dir, { recursive: true });
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
  // One path for registry and store sources: a registry's repository is a store too.
  const source: StoreImage = "store" in ref ? ref : {
    store: remoteStore(ref, options),
    reference: ref.digest ?? ref.tag ?? "latest",
  };
  const tag = "store" in ref
    ? (isDigest(ref.reference) ? undefined : ref.reference)
    : ref.tag;
  const { store } = source;
  const name = `${store.name}${
    isDigest(source.reference) ? "@" : ":"
  }${source.reference}`;
  const copyOptions = {
    signal: options.signal,
    attempts: options.attempts,
    onRetry: options.onRetry,
    concurrency: options.concurrency,
  };
  const { manifest } = await resolveImage(store, source.reference, {
    ...copyOptions,
    platform: options.platform,
  });
  const document = manifest.document;
  const kind = manifestKind(document);
  if (kind === "neither") {
    throw new NotPullableError(
      name,
      document,
      "its config is not an image config and its layers have no titles",
    );
  }
  if (kind === "artifact") {
    // Through the stage like layers: verified, reused when there, retried from the source;
    // the config and the manifest (tagged last) go there too, so the stage is a layout of it.
    const files = await writeArtifactFiles(store, document, target, {
      ...copyOptions,
      onBlob: options.onBlob,
      stage,
    });
    await copyBlobs(store, stage, [document.config], copyOptions);
    await stage.push(manifest.descriptor, bytesSource(manifest.bytes), {
      tag,
      signal: options.signal,
    });
    return {
      manifest: document,
      descriptor: manifest.descriptor,
      config: {} as ImageConfig,
      kind,
      files,
    };
  }
  // Pull = copy into the stage (verified, reused when there, retried from the source), then
  // extract from it: the config first, read back from the stage.
  if (document.config.size > MAX_MANIFEST_SIZE) {
    throw new RangeError(
      `Cannot pull ${name}: its config ${document.config.digest} is ${document.config.size} bytes, more than ${MAX_MANIFEST_SIZE}`,
    );
  }
  const { onBlob } = options;
  await copyBlobs(store, stage, [document.config], { ...copyOptions, onBlob });
  const config = await readConfig(stage, document.config, copyOptions);
  const layers = document.layers;
  if (!Array.isArray(config.rootfs?.diff_ids)) {
    throw new NotPullableError(
      name,
      document,
      `its config ${document.config.digest} has no rootfs.diff_ids`,
    );
  }
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new SyntaxError(
      `Cannot pull ${name}: the manifest has ${layers.length} layers but the config lists ${diffIds.length} diff_ids`,
    );
  }
  const compressions = layers.map((layer) => {
    const compression = compressionOfLayer(layer.mediaType);
    if (compression === undefined) {
      throw new TypeError(
        `Cannot pull ${name}: layer ${layer.digest} has media type "${layer.mediaType}", which is not supported (tar, tar+gzip or tar+zstd)`,
      );
    }
    return compression;
  });
  await copyBlobs(store, stage, layers, {
    ...copyOptions,
    // A layer is done once extracted: downloaded, it waits for its turn.
    onBlob: onBlob &&
      ((d, state, p) => onBlob(d, state === "done" ? "waiting" : state, p)),
  });
  for (const [i, layer] of layers.entries()) {
    const whole = { done: layer.size, total: layer.size, attempt: 1 };
    onBlob?.(layer, "extracting", whole);
    const result = await extractLayer(
      (await Deno.open(stage.blobPath(layer.digest))).readable,
      target,
      {
        compression: compressions[i],
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
    onBlob?.(layer, "done", whole);
  }
  // The manifest, and the tag last: a pull that failed left the stage's tags as they were.
  await stage.push(manifest.descriptor, bytesSource(manifest.bytes), {
    tag,
    signal: options.signal,
  });
  return {
    manifest: document,
    descriptor: manifest.descriptor,
    config,
    kind,
    files: [],
  };
}
