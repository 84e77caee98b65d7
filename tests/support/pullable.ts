/**
 * Images a pull can extract: each layer a gzipped tar of one file of pseudo-random bytes (so
 * it does not compress), with the config's `diff_ids` the digests of the tars.
 *
 * @module
 */
import { digestOf } from "../../src/oci/digest.ts";
import type { Platform } from "../../src/oci/platform.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import { blobOf, pseudoRandomBytes, type TestImage } from "./images.ts";
import { gzip, rawTar } from "./layers.ts";

/**
 * An image with one layer per size, each holding `layer-N.bin` of that many bytes.
 *
 * @param platform The config's platform.
 * @param sizes The size of each layer's file.
 * @returns The image, for `storeImage` or `pushImage`.
 */
export function pullableImage(
  platform: Platform,
  sizes: readonly number[],
): TestImage {
  const tars = sizes.map((size, i) =>
    rawTar([{ name: `layer-${i}.bin`, body: pseudoRandomBytes(size, 7 + i) }])
  );
  const layers = tars.map((tar) => blobOf(gzip(tar)));
  const config = blobOf(
    new TextEncoder().encode(JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      rootfs: { type: "layers", diff_ids: tars.map((t) => digestOf(t)) },
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
