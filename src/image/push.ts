/**
 * Pushing images: new layers on top of a base image (or from scratch), with a config that
 * extends the base's, and multi-platform indexes.
 *
 * @module
 */
import {
  endpoint,
  formatReference,
  type ImageReference,
} from "../oci/reference.ts";
import { ensureStatus, RegistryError } from "../transport/errors.ts";
import { defaultOpener } from "../transport/opener.ts";
import { resolveRegistryUrl } from "../transport/redirects.ts";
import {
  type BlobSource,
  bytesSource,
  createRequest,
  fileSource,
} from "../transport/request_body.ts";
import { digestOf, verifyStream } from "../oci/digest.ts";
import type { RegistryOptions } from "../store/remote/blobs.ts";
import { encodeManifest } from "../store/remote/manifests.ts";
import type { LocalBlobs, Store } from "../store/store.ts";
import { remoteStore, type RemoteStoreOptions } from "../store/remote_store.ts";
import { copyBlobs, copyMissingLayers, type OnBlob } from "./copy.ts";
import type { Layer } from "../layer/create_layer.ts";
import type {
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
} from "../oci/manifest.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  ociMediaType,
} from "../oci/media_types.ts";
import {
  hostPlatform,
  normalizePlatform,
  type Platform,
} from "../oci/platform.ts";

/** A store to push an image into (a layout, memory), and the tag to give it there. */
export interface StoreTarget {
  /** Where the image goes. */
  readonly store: Store;
  /** The tag; without one the image is stored by digest only. */
  readonly tag?: string;
}

/** Options of {@linkcode pushImage}. */
export interface PushImageOptions extends RemoteStoreOptions {
  /** The new layers, base first, as {@linkcode createLayer} made them. */
  readonly layers: readonly Layer[];
  /** The image to build on; its missing layers are copied to the target first. */
  readonly base?: ImageReference;
  /**
   * The platform of the image (and the one picked from a base index).
   * @default {the base's platform, else hostPlatform()}
   */
  readonly platform?: Platform;
  /** Manifest annotations, added to the ones this function writes. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Runtime config (`Env`, `Entrypoint`, `Cmd`, …) merged over the base's. */
  readonly config?: Readonly<Record<string, unknown>>;
  /**
   * The creation time written in the config, history and annotations (RFC 3339).
   * @default {SOURCE_DATE_EPOCH when set, else now}
   */
  readonly created?: string;
  /** Written as `created_by` in the history of each new layer. @default {"oci push"} */
  readonly createdBy?: string;
  /**
   * Push the manifest by tag (true) or only by digest (false, for the images of an index).
   * @default {true}
   */
  readonly tag?: boolean;
  /**
   * Copies of a blob in all when one fails in a way another may not; each starts again from
   * the source (a new upload session).
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before a blob's upload starts again in a new session. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
  /**
   * Blobs uploaded at the same time.
   * @default {4}
   */
  readonly concurrency?: number;
  /** Told of each blob's state and bytes (the base's layers, the new layers, the config). */
  readonly onBlob?: OnBlob;
}

/**
 * Checks, before anything large is packed or sent, that a repository takes pushes: `GET /v2/`
 * (the registry is there, speaks the distribution API, and logs us in), then an upload session
 * started (`POST …/blobs/uploads/`, which needs the push scope: a token for it, or credentials
 * the registry accepts) and cancelled at once (`DELETE`, best effort). The token or login is
 * cached by the opener, so the push that follows reuses it. Fails with what broke: a
 * `NetworkError` (wrong host, refused, certificate), an `AuthenticationError`, or a
 * `RegistryError` (not a registry, push denied).
 *
 * @param ref The repository to push to (tag and digest are ignored).
 * @param options Transport and signal.
 * @throws {RegistryError} When the registry does not answer as one that takes the push.
 *
 * @example The embedded registry takes pushes
 * ```ts
 * import { checkPushAccess } from "./push.ts";
 * import { createRegistry } from "../server/handler.ts";
 * import { parseReference } from "../oci/reference.ts";
 * const registry = createRegistry();
 * await checkPushAccess(parseReference("127.0.0.1:5000/app:v1"), {
 *   transport: (request) => Promise.resolve(registry(request)),
 * });
 * ```
 */
export async function checkPushAccess(
  ref: ImageReference,
  options: RegistryOptions = {},
): Promise<void> {
  const transport = options.transport ?? defaultOpener();
  const { signal } = options;
  const base = new Request(endpoint(ref), { signal });
  const answer = await ensureStatus(base, await transport(base), 200);
  await answer.body?.cancel();
  const start = createRequest(
    endpoint(ref, `${ref.repository}/blobs/uploads/`),
    {
      method: "POST",
      body: "",
      signal,
    },
  );
  const started = await ensureStatus(start, await transport(start), 202);
  await started.body?.cancel();
  const location = started.headers.get("location");
  if (location === null) {
    throw new RegistryError({
      method: start.method,
      url: start.url,
      status: started.status,
      reason: "the registry started an upload but sent no Location header",
    });
  }
  await cancelUpload(
    resolveRegistryUrl(location, {
      from: started.url || start.url,
      base: endpoint(ref),
      header: "upload Location",
    }).href,
    transport,
    signal,
  );
}

/** Cancels an upload session; a registry that keeps it (or fails to answer) lets it expire. */
async function cancelUpload(
  url: string,
  transport: (request: Request) => Promise<Response>,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    const response = await transport(
      new Request(url, { method: "DELETE", signal }),
    );
    await response.body?.cancel();
  } catch {
    // Best effort: an abandoned session is collected by the registry.
  }
}

function defaultCreated(): string {
  let epoch: string | undefined;
  try {
    epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  } catch {
    epoch = undefined;
  }
  const date = epoch && /^\d+$/.test(epoch)
    ? new Date(Number(epoch) * 1000)
    : new Date();
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The base image a new one is built on, as {@linkcode copyMissingLayers} read it. */
export interface BaseImage {
  /** Its name for the `org.opencontainers.image.base.name` annotation, without a digest. */
  readonly name: string;
  /** Its manifest's descriptor (the `…base.digest` annotation). */
  readonly descriptor: Descriptor;
  /** Its manifest: its layers come first. */
  readonly manifest: ImageManifest;
  /** Its config: extended by the new one. */
  readonly config: ImageConfig;
}

/** Options of {@linkcode buildImage}. */
export interface BuildImageOptions {
  /**
   * The new layers, base first (what `createLayer` made: digest, diff_id, size and media
   * type; without a media type a layer is listed as tar+gzip).
   */
  readonly layers: readonly (
    & Pick<Layer, "compressedDigest" | "uncompressedDigest" | "size">
    & Partial<Pick<Layer, "mediaType">>
  )[];
  /** The image to build on; without one the image is built from scratch. */
  readonly base?: BaseImage;
  /**
   * The platform of the image.
   * @default {the base's platform, else hostPlatform()}
   */
  readonly platform?: Platform;
  /** Manifest annotations, added to the ones this function writes. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Runtime config (`Env`, `Entrypoint`, `Cmd`, …) merged over the base's. */
  readonly config?: Readonly<Record<string, unknown>>;
  /** The creation time written in the config, history and annotations (RFC 3339). */
  readonly created: string;
  /** Written as `created_by` in the history of each new layer. @default {"oci push"} */
  readonly createdBy?: string;
}

/** An image as {@linkcode buildImage} made it: exact bytes and their descriptors. */
export interface BuiltImage {
  /** The config's bytes and descriptor. */
  readonly config: {
    readonly bytes: Uint8Array;
    readonly descriptor: Descriptor;
  };
  /** The manifest's bytes, descriptor (its `platform` set) and document. */
  readonly manifest: {
    readonly bytes: Uint8Array;
    readonly descriptor: Descriptor;
    readonly document: ImageManifest;
  };
  /** The descriptors of the new layers, in order. */
  readonly layers: readonly Descriptor[];
}

/**
 * Builds an image's config and manifest (no I/O): the config extends the base's (`diff_ids`
 * appended with the layers' uncompressed digests, one `history` entry per layer, `created`,
 * platform, runtime config merged), the manifest lists the base's layers then the new ones,
 * with OCI media types and the `org.opencontainers.image.created` annotation and, on a base,
 * `…base.name` and `…base.digest`.
 *
 * @param options Layers, base, platform, annotations, runtime config and the creation time.
 * @returns The config and manifest as bytes with their descriptors, and the new layers'
 * descriptors.
 *
 * @example An image of one layer, from scratch
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildImage } from "./push.ts";
 * const image = buildImage({
 *   layers: [{ compressedDigest: "sha256:" + "a".repeat(64), uncompressedDigest: "sha256:" + "b".repeat(64), size: 3 }],
 *   platform: { os: "linux", architecture: "amd64" },
 *   created: "2024-01-01T00:00:00Z",
 * });
 * assert.equal(image.manifest.document.layers.length, 1);
 * assert.deepEqual(JSON.parse(new TextDecoder().decode(image.config.bytes)).rootfs.diff_ids, ["sha256:" + "b".repeat(64)]);
 * assert.deepEqual(image.manifest.descriptor.platform, { os: "linux", architecture: "amd64" });
 * ```
 */
export function buildImage(options: BuildImageOptions): BuiltImage {
  const { base, created } = options;
  const baseConfig = base?.config;
  const layers: Descriptor[] = options.layers.map((layer) => ({
    mediaType: layer.mediaType ?? OCI_LAYER_GZIP_MEDIA_TYPE,
    digest: layer.compressedDigest,
    size: layer.size,
  }));
  const platform = normalizePlatform(
    options.platform ??
      (baseConfig
        ? {
          os: baseConfig.os,
          architecture: baseConfig.architecture,
          variant: baseConfig.variant,
        }
        : hostPlatform()),
  );
  const createdBy = options.createdBy ?? "oci push";
  const config: ImageConfig = {
    ...baseConfig,
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(platform["os.version"] ? { "os.version": platform["os.version"] } : {}),
    config: { ...baseConfig?.config, ...options.config },
    rootfs: {
      type: "layers",
      diff_ids: [
        ...(baseConfig?.rootfs.diff_ids ?? []),
        ...options.layers.map((l) => l.uncompressedDigest),
      ],
    },
    history: [
      ...(baseConfig?.history ?? []),
      ...options.layers.map(() => ({ created, created_by: createdBy })),
    ],
  };
  if (platform.variant === undefined) {
    delete (config as { variant?: string }).variant;
  }
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDescriptor: Descriptor = {
    mediaType: OCI_CONFIG_MEDIA_TYPE,
    digest: digestOf(configBytes),
    size: configBytes.byteLength,
  };
  const annotations: Record<string, string> = {
    "org.opencontainers.image.created": created,
  };
  if (base !== undefined) {
    annotations["org.opencontainers.image.base.name"] = base.name;
    annotations["org.opencontainers.image.base.digest"] =
      base.descriptor.digest;
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: configDescriptor,
    // A Docker-format base's layers are listed with their OCI media types (same bytes, same
    // digests): the whole manifest is OCI.
    layers: [
      ...(base?.manifest.layers ?? []).map((layer) => ({
        ...layer,
        mediaType: ociMediaType(layer.mediaType),
      })),
      ...layers,
    ],
    annotations: { ...annotations, ...options.annotations },
  };
  const { bytes, digest, size } = encodeManifest(manifest);
  return {
    config: { bytes: configBytes, descriptor: configDescriptor },
    manifest: {
      bytes,
      descriptor: {
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        digest,
        size,
        platform,
      },
      document: manifest,
    },
    layers,
  };
}

/**
 * The blobs a push made (the packed layers' files, the config's bytes) as a store to copy
 * from: verified when they were made, so sent as they are ({@linkcode LocalBlobs}); the target
 * checks them.
 */
function newBlobs(
  layers: readonly Layer[],
  config: BuiltImage["config"],
): Store & LocalBlobs {
  const files = new Map(layers.map((l) => [l.compressedDigest, l.path]));
  const name = "the image being pushed";
  const sourceOf = async (descriptor: Descriptor): Promise<BlobSource> => {
    if (descriptor.digest === config.descriptor.digest) {
      return bytesSource(config.bytes);
    }
    const path = files.get(descriptor.digest);
    if (path === undefined) {
      throw new Deno.errors.NotFound(
        `Cannot find blob ${descriptor.digest} in ${name}`,
      );
    }
    return await fileSource(path);
  };
  return {
    name,
    exists: (descriptor) =>
      Promise.resolve(
        files.has(descriptor.digest) ||
          descriptor.digest === config.descriptor.digest,
      ),
    async fetch(descriptor, call) {
      return verifyStream(
        (await sourceOf(descriptor)).open(),
        descriptor.digest,
        { size: descriptor.size, context: name, signal: call?.signal },
      );
    },
    push: () =>
      Promise.reject(new TypeError(`Cannot push into ${name}: read only`)),
    resolve: (reference) =>
      Promise.reject(
        new Deno.errors.NotFound(`Cannot find "${reference}" in ${name}`),
      ),
    blobSource: sourceOf,
  };
}

/**
 * Pushes an image into a registry or any store: {@linkcode copyMissingLayers} copies the base's
 * layers the target lacks (mounting within one registry), {@linkcode buildImage} makes the
 * config and manifest, then the new layers and the config are copied (only the ones the target
 * lacks; each started again from its file when its upload fails in a way another may not), and
 * the manifest last, by tag. Without a base, the image is built from scratch. An abort of
 * `options.signal` stops the upload in progress at once, cancels its upload session, and
 * rejects with the signal's reason; no manifest is written.
 *
 * @param ref The target repository and tag, or a store and tag.
 * @param options Layers, base, platform, annotations, config, and transport options.
 * @returns The manifest's descriptor (with its platform).
 *
 * @example Push an image (no layers here) to the in-process registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { pushImage } from "./push.ts";
 * import { createRegistry } from "../server/mod.ts";
 * import { parseReference } from "../oci/reference.ts";
 * const descriptor = await pushImage(parseReference("127.0.0.1:5000/app:v1"), {
 *   layers: [],
 *   opener: createRegistry(),
 *   platform: { os: "linux", architecture: "amd64" },
 * });
 * assert.equal(descriptor.platform?.architecture, "amd64");
 * ```
 */
export async function pushImage(
  ref: ImageReference | StoreTarget,
  options: PushImageOptions,
): Promise<Descriptor> {
  try {
    return await pushImageOnce(ref, options);
  } catch (error) {
    throw options.signal?.aborted ? options.signal.reason : error;
  }
}

async function pushImageOnce(
  ref: ImageReference | StoreTarget,
  options: PushImageOptions,
): Promise<Descriptor> {
  const target = "store" in ref ? ref.store : remoteStore(ref, options);
  const copyOptions = {
    signal: options.signal,
    attempts: options.attempts,
    onRetry: options.onRetry,
    concurrency: options.concurrency,
    onBlob: options.onBlob,
  };
  let base: BaseImage | undefined;
  if (options.base !== undefined) {
    const reference = options.base.digest ?? options.base.tag ?? "latest";
    base = {
      ...await copyMissingLayers(
        remoteStore(options.base, options),
        target,
        reference,
        {
          ...copyOptions,
          platform: options.platform ?? hostPlatform(),
          log: options.log,
        },
      ),
      name: formatReference({ ...options.base, digest: undefined }),
    };
  }
  const image = buildImage({
    layers: options.layers,
    base,
    platform: options.platform,
    annotations: options.annotations,
    config: options.config,
    created: options.created ?? defaultCreated(),
    createdBy: options.createdBy,
  });
  // The new layers, then the config, then the manifest: a reader never sees a manifest whose
  // blobs are missing.
  const blobs = newBlobs(options.layers, image.config);
  await copyBlobs(blobs, target, image.layers, copyOptions);
  await copyBlobs(blobs, target, [image.config.descriptor], copyOptions);
  const tag = options.tag === false ? undefined : ref.tag;
  const { platform: _, ...descriptor } = image.manifest.descriptor;
  await target.push(descriptor, bytesSource(image.manifest.bytes), {
    tag,
    signal: options.signal,
  });
  return image.manifest.descriptor;
}

/**
 * Pushes one image per platform (by digest) and an index over them (by the target's tag),
 * into a registry or any store.
 *
 * @param ref The target repository and tag, or a store and tag.
 * @param images One set of {@linkcode PushImageOptions} per platform; each needs `platform`.
 * @param options Transport options and index annotations.
 * @returns The index's descriptor.
 *
 * @example Two platforms into a memory store
 * ```ts
 * import assert from "node:assert/strict";
 * import { pushIndex } from "./push.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * const index = await pushIndex({ store, tag: "v1" }, [
 *   { layers: [], platform: { os: "linux", architecture: "amd64" } },
 *   { layers: [], platform: { os: "linux", architecture: "arm64" } },
 * ]);
 * assert.equal((await store.resolve("v1")).digest, index.digest);
 * ```
 */
export async function pushIndex(
  ref: ImageReference | StoreTarget,
  images: readonly PushImageOptions[],
  options: RemoteStoreOptions & { annotations?: Record<string, string> } = {},
): Promise<Descriptor> {
  const name = "store" in ref ? ref.store.name : formatReference(ref);
  const target = "store" in ref ? ref.store : remoteStore(ref, options);
  const manifests: Descriptor[] = [];
  for (const image of images) {
    if (image.platform === undefined) {
      throw new TypeError(
        `Cannot push an index to ${name}: every image needs a platform`,
      );
    }
    manifests.push(
      await pushImage(ref, { ...options, ...image, tag: false }),
    );
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests,
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const { bytes, digest, size } = encodeManifest(index);
  const descriptor = { mediaType: OCI_INDEX_MEDIA_TYPE, digest, size };
  await target.push(descriptor, bytesSource(bytes), {
    tag: ref.tag,
    signal: options.signal,
  });
  return descriptor;
}
