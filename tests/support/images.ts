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
import { uploadBlob } from "../../src/registry/blobs.ts";
import { uploadManifest } from "../../src/registry/manifests.ts";
import type { Transport } from "../../src/transport/request_body.ts";

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

/** Pushes an image's blobs and manifest; by tag unless `byDigest`. */
export async function pushImage(
  ref: ImageReference,
  image: TestImage,
  options: { transport?: Transport; byDigest?: boolean } = {},
): Promise<Descriptor> {
  for (const blob of [image.config, ...image.layers]) {
    await uploadBlob(ref, blob.bytes, blob.descriptor.digest, {
      transport: options.transport,
    });
  }
  return await uploadManifest(ref, image.manifest, {
    transport: options.transport,
    tag: !options.byDigest,
  });
}

/** Pushes several platform images by digest and an index over them by tag. */
export async function pushIndex(
  ref: ImageReference,
  images: TestImage[],
  options: { transport?: Transport } = {},
): Promise<
  { index: ImageIndex; descriptor: Descriptor; manifests: Descriptor[] }
> {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    const descriptor = await pushImage(ref, image, {
      ...options,
      byDigest: true,
    });
    manifests.push({ ...descriptor, platform: image.platform });
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests,
  };
  const descriptor = await uploadManifest(ref, index, options);
  return { index, descriptor, manifests };
}
