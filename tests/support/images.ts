/** Small test images: deterministic gzip layers of pseudo-random bytes, configs and manifests. */
import { gzipSync } from "node:zlib";
import { digestOf } from "../../src/oci/digest.ts";
import type { ImageReference } from "../../src/oci/reference.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../../src/oci/manifest.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import type { Platform } from "../../src/oci/platform.ts";
import { encodeManifest } from "../../src/store/remote/manifests.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import type { Store } from "../../src/store/store.ts";
import {
  bytesSource,
  type Transport,
} from "../../src/transport/request_body.ts";

/** Deterministic bytes that do not compress: a linear congruential sequence. */
export function pseudoRandomBytes(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** A blob and its descriptor. */
export interface TestBlob {
  bytes: Uint8Array;
  descriptor: Descriptor;
}

export function blobOf(
  bytes: Uint8Array,
  mediaType = OCI_LAYER_GZIP_MEDIA_TYPE,
): TestBlob {
  return {
    bytes,
    descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength },
  };
}

/** One platform image: its config, layers and manifest. */
export interface TestImage {
  platform: Platform;
  config: TestBlob;
  layers: TestBlob[];
  manifest: ImageManifest;
}

export function makeImage(
  platform: Platform,
  layerSizes: number[],
  seed = 1,
): TestImage {
  // Real gzip, so that tools that sniff layers (skopeo recompresses what does not look
  // compressed) keep them as they are.
  const layers = layerSizes.map((size, i) =>
    blobOf(new Uint8Array(gzipSync(pseudoRandomBytes(size, seed * 100 + i))))
  );
  const config = blobOf(
    new TextEncoder().encode(JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      ...(platform["os.version"]
        ? { "os.version": platform["os.version"] }
        : {}),
      rootfs: {
        type: "layers",
        diff_ids: layers.map((l) => l.descriptor.digest),
      },
      config: { Env: [`SEED=${seed}`] },
    })),
    OCI_CONFIG_MEDIA_TYPE,
  );
  return {
    platform,
    config,
    layers,
    manifest: {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: config.descriptor,
      layers: layers.map((l) => l.descriptor),
    },
  };
}

/**
 * Puts an image's blobs (those the store lacks) and manifest into any store, under `tag` when
 * given.
 */
export async function storeImage(
  store: Store,
  image: TestImage,
  options: { tag?: string } = {},
): Promise<Descriptor> {
  for (const blob of [image.config, ...image.layers]) {
    if (!(await store.exists(blob.descriptor))) {
      await store.push(blob.descriptor, bytesSource(blob.bytes));
    }
  }
  return await storeManifest(store, image.manifest, options.tag);
}

/** Puts several platform images by digest and an index over them, under `tag`, into a store. */
export async function storeIndex(
  store: Store,
  images: TestImage[],
  options: { tag?: string } = {},
): Promise<
  { index: ImageIndex; descriptor: Descriptor; manifests: Descriptor[] }
> {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    const descriptor = await storeImage(store, image);
    manifests.push({ ...descriptor, platform: image.platform });
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests,
  };
  const descriptor = await storeManifest(store, index, options.tag);
  return { index, descriptor, manifests };
}

async function storeManifest(
  store: Store,
  manifest: ImageManifest | ImageIndex,
  tag: string | undefined,
): Promise<Descriptor> {
  const { bytes, digest, size } = encodeManifest(manifest);
  const descriptor = { mediaType: manifest.mediaType!, digest, size };
  await store.push(descriptor, bytesSource(bytes), { tag });
  return descriptor;
}

/** Pushes an image to a registry repository; by the reference's tag unless `byDigest`. */
export function pushTestImage(
  ref: ImageReference,
  image: TestImage,
  options: { transport?: Transport; byDigest?: boolean } = {},
): Promise<Descriptor> {
  return storeImage(
    remoteStore(ref, { transport: options.transport }),
    image,
    {
      tag: options.byDigest ? undefined : ref.tag,
    },
  );
}

/** Pushes several platform images by digest and an index over them by the reference's tag. */
export function pushTestIndex(
  ref: ImageReference,
  images: TestImage[],
  options: { transport?: Transport } = {},
): Promise<
  { index: ImageIndex; descriptor: Descriptor; manifests: Descriptor[] }
> {
  return storeIndex(remoteStore(ref, options), images, { tag: ref.tag });
}
