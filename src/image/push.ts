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
import { createRequest } from "../transport/request_body.ts";
import { digestOf } from "../oci/digest.ts";
import { type RegistryOptions, uploadBlob } from "../store/remote/blobs.ts";
import { encodeManifest, uploadManifest } from "../store/remote/manifests.ts";
import type { Store } from "../store/store.ts";
import { bytesSource, fileSource } from "../transport/request_body.ts";

/** A store to push an image into (a layout, memory), and the tag to give it there. */
export interface StoreTarget {
  /** Where the image goes. */
  readonly store: Store;
  /** The tag; without one the image is stored by digest only. */
  readonly tag?: string;
}
import type { ProgressOptions } from "../store/remote/progress.ts";
import { copyMissingLayers } from "./copy.ts";
import { remoteStore } from "../store/remote_store.ts";
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
} from "../oci/media_types.ts";
import {
  hostPlatform,
  normalizePlatform,
  type Platform,
} from "../oci/platform.ts";

/** Options of {@linkcode pushImage}. */
export interface PushImageOptions extends RegistryOptions, ProgressOptions {
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
  /** Told before a blob's upload starts again in a new session. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
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

/**
 * Pushes an image: copies the base's missing layers to the target (mounting within one
 * registry), uploads the new layers, writes a config that extends the base's (`diff_ids`
 * appended with the layers' uncompressed digests, one `history` entry per layer, `created`,
 * platform), uploads it, then the manifest (OCI media types, with the
 * `org.opencontainers.image.created` annotation and, on a base, `…base.name` and
 * `…base.digest`). Without a base, the image is built from scratch. An abort of
 * `options.signal` stops the upload in progress at once, cancels its upload session, and
 * rejects with the signal's reason; no manifest is written.
 *
 * @param ref The target repository and tag.
 * @param options Layers, base, platform, annotations, config, and transport options.
 * @returns The manifest's descriptor (with its platform).
 *
 * @example
 * ```ts ignore
 * const layer = await createLayer("./prefix", await openLayout("stage"));
 * const { digest } = await pushImage(parseReference("127.0.0.1:5000/app:v1"), { layers: [layer] });
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
  const toStore = "store" in ref ? ref : undefined;
  const target = toStore
    ? toStore.store
    : remoteStore(ref as ImageReference, options);
  /** A blob into the target: uploadBlob to a registry (HEAD first, retries), else the store. */
  const putBlob = async (
    descriptor: Descriptor,
    source: string | Uint8Array,
  ) => {
    if (toStore === undefined) {
      await uploadBlob(
        ref as ImageReference,
        source,
        descriptor.digest,
        options,
      );
    } else if (!(await target.exists(descriptor, options))) {
      await target.push(
        descriptor,
        typeof source === "string"
          ? await fileSource(source)
          : bytesSource(source),
        { signal: options.signal },
      );
    }
  };
  const created = options.created ?? defaultCreated();
  let baseManifest: ImageManifest | undefined;
  let baseConfig: ImageConfig | undefined;
  const annotations: Record<string, string> = {
    "org.opencontainers.image.created": created,
  };
  if (options.base !== undefined) {
    const reference = options.base.digest ?? options.base.tag ?? "latest";
    const base = await copyMissingLayers(
      remoteStore(options.base, options),
      target,
      reference,
      {
        platform: options.platform ?? hostPlatform(),
        log: options.log,
        signal: options.signal,
      },
    );
    baseManifest = base.manifest;
    baseConfig = base.config;
    annotations["org.opencontainers.image.base.name"] = formatReference({
      ...options.base,
      digest: undefined,
    });
    annotations["org.opencontainers.image.base.digest"] =
      base.descriptor.digest;
  }
  for (const layer of options.layers) {
    await putBlob({
      mediaType: OCI_LAYER_GZIP_MEDIA_TYPE,
      digest: layer.compressedDigest,
      size: layer.size,
    }, layer.path);
  }

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
  await putBlob(configDescriptor, configBytes);

  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: configDescriptor,
    layers: [
      ...(baseManifest?.layers ?? []),
      ...options.layers.map((layer) => ({
        mediaType: OCI_LAYER_GZIP_MEDIA_TYPE,
        digest: layer.compressedDigest,
        size: layer.size,
      })),
    ],
    annotations: { ...annotations, ...options.annotations },
  };
  if (toStore !== undefined) {
    const { bytes, digest, size } = encodeManifest(manifest);
    const descriptor = { mediaType: manifest.mediaType!, digest, size };
    await target.push(descriptor, bytesSource(bytes), {
      tag: options.tag === false ? undefined : toStore.tag,
      signal: options.signal,
    });
    return { ...descriptor, platform };
  }
  const descriptor = await uploadManifest(
    ref as ImageReference,
    manifest,
    options,
  );
  return { ...descriptor, platform };
}

/**
 * Pushes one image per platform (by digest) and an index over them (by the reference's tag).
 *
 * @param ref The target repository and tag.
 * @param images One set of {@linkcode PushImageOptions} per platform; each needs `platform`.
 * @param options Transport options and index annotations.
 * @returns The index's descriptor.
 *
 * @example
 * ```ts ignore
 * await pushIndex(ref, [{ layers: [amd], platform: parsePlatform("linux/amd64") }, { layers: [arm], platform: parsePlatform("linux/arm64") }]);
 * ```
 */
export async function pushIndex(
  ref: ImageReference,
  images: readonly PushImageOptions[],
  options: RegistryOptions & { annotations?: Record<string, string> } = {},
): Promise<Descriptor> {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    if (image.platform === undefined) {
      throw new TypeError(
        `Cannot push an index to ${
          formatReference(ref)
        }: every image needs a platform`,
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
  return await uploadManifest(ref, index, options);
}
