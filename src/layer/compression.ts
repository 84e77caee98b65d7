/**
 * Layer compression: gzip, zstd or none, which media type says which, and streaming compression
 * and decompression whose memory does not grow with what a layer inflates to.
 *
 * Gzip is written by Workers, block by block (`parallel_gzip.ts`: the same bytes whatever the
 * number of cores) and read through `node:zlib`, one member or several (see `gunzip.ts`); zstd
 * goes through `node:zlib` too (see `zstd.ts`).
 *
 * @module
 */
import {
  DOCKER_LAYER_GZIP_MEDIA_TYPE,
  DOCKER_LAYER_TAR_MEDIA_TYPE,
  DOCKER_LAYER_ZSTD_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_LAYER_TAR_MEDIA_TYPE,
  OCI_LAYER_ZSTD_MEDIA_TYPE,
} from "../oci/media_types.ts";
import { unzstdBounded, zstdCompress } from "./zstd.ts";
import { parallelGzip } from "./parallel_gzip.ts";
import { gunzipBounded } from "./gunzip.ts";

/** How a layer's tar is compressed. */
export type Compression = "gzip" | "zstd" | "none";

/**
 * Every {@linkcode Compression}, the default first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMPRESSIONS } from "./compression.ts";
 * assert.deepEqual(COMPRESSIONS, ["gzip", "zstd", "none"]);
 * ```
 */
export const COMPRESSIONS: readonly Compression[] = ["gzip", "zstd", "none"];

/** The manifest formats a layer's media type can be spelled in. */
export type ManifestFormat = "oci" | "docker";

const MEDIA_TYPES: Record<ManifestFormat, Record<Compression, string>> = {
  oci: {
    gzip: OCI_LAYER_GZIP_MEDIA_TYPE,
    zstd: OCI_LAYER_ZSTD_MEDIA_TYPE,
    none: OCI_LAYER_TAR_MEDIA_TYPE,
  },
  docker: {
    gzip: DOCKER_LAYER_GZIP_MEDIA_TYPE,
    zstd: DOCKER_LAYER_ZSTD_MEDIA_TYPE,
    none: DOCKER_LAYER_TAR_MEDIA_TYPE,
  },
};

/**
 * The media type of a layer compressed so, in an OCI or a Docker manifest.
 *
 * @param compression How the tar is compressed.
 * @param format The manifest's format.
 * @returns The layer descriptor's media type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerMediaType } from "./compression.ts";
 * assert.equal(layerMediaType("zstd"), "application/vnd.oci.image.layer.v1.tar+zstd");
 * assert.equal(layerMediaType("gzip", "docker"), "application/vnd.docker.image.rootfs.diff.tar.gzip");
 * ```
 */
export function layerMediaType(
  compression: Compression,
  format: ManifestFormat = "oci",
): string {
  return MEDIA_TYPES[format][compression];
}

/**
 * How a layer with this media type is compressed (OCI's and Docker's tar, tar+gzip and
 * tar+zstd), or undefined for a media type that is no tar layer we know.
 *
 * @param mediaType The layer descriptor's media type (parameters and case ignored).
 * @returns Its compression, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compressionOfLayer } from "./compression.ts";
 * assert.equal(compressionOfLayer("application/vnd.docker.image.rootfs.diff.tar.zstd"), "zstd");
 * assert.equal(compressionOfLayer("application/vnd.oci.image.layer.v1.tar"), "none");
 * assert.equal(compressionOfLayer("application/json"), undefined);
 * ```
 */
export function compressionOfLayer(
  mediaType: string | undefined,
): Compression | undefined {
  const base = (mediaType ?? "").split(";")[0].trim().toLowerCase();
  for (const types of Object.values(MEDIA_TYPES)) {
    for (const compression of COMPRESSIONS) {
      if (types[compression] === base) return compression;
    }
  }
  return undefined;
}

/**
 * Compresses a tar stream: gzip (level 6, as `gzip -6`), zstd (level 3, as `zstd -3`, with
 * zstd's checksum), or none (the stream itself).
 *
 * @param stream The tar bytes.
 * @param compression How to compress them.
 * @returns The compressed bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compress, decompress } from "./compression.ts";
 * const text = "hello ".repeat(1000);
 * const packed = compress(new Response(text).body!, "zstd");
 * const back = await new Response(decompress(packed, "zstd")).text();
 * assert.equal(back, text);
 * ```
 */
export function compress(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
): ReadableStream<Uint8Array> {
  switch (compression) {
    case "none":
      return stream;
    case "gzip":
      return stream.pipeThrough(parallelGzip());
    case "zstd":
      return zstdCompress(stream);
  }
}

/**
 * Decompresses a layer with bounded memory, whatever it inflates to: gzip (one member or
 * several) fed in pieces sized by the ratio seen (see `gunzipBounded`), zstd through node:zlib with back-pressure on its
 * output and a bounded window (see {@linkcode unzstdBounded}), none as it is.
 *
 * @param stream The compressed bytes.
 * @param compression How they are compressed.
 * @returns The tar bytes; damaged gzip errors with a `GzipFormatError`, damaged zstd with a
 * `ZstdFormatError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compress, decompress } from "./compression.ts";
 * const packed = compress(new Response("layer").body!, "gzip");
 * assert.equal(await new Response(decompress(packed, "gzip")).text(), "layer");
 * ```
 */
export function decompress(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
): ReadableStream<Uint8Array> {
  switch (compression) {
    case "none":
      return stream;
    case "gzip":
      return gunzipBounded(stream);
    case "zstd":
      return unzstdBounded(stream);
  }
}
