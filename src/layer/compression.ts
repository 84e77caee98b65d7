/**
 * Layer compression: gzip, zstd or none, which media type says which, and streaming compression
 * and decompression whose memory does not grow with what a layer inflates to.
 *
 * Gzip and zstd are written by Workers, block by block (`parallel_gzip.ts`, `parallel_zstd.ts`:
 * the same bytes whatever the number of cores). Both are read through `node:zlib`: gzip one
 * member or several (see `gunzip.ts`), zstd one frame or several (see `zstd.ts`).
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
import { unzstdBounded } from "./zstd.ts";
import { parallelGzip } from "./parallel_gzip.ts";
import { parallelZstd } from "./parallel_zstd.ts";
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

/** Options of {@linkcode compress}. */
export interface CompressOptions {
  /**
   * Told about each input chunk once its bytes are copied into a block (never for "none"): a
   * caller that owns the chunks may free their memory then.
   */
  readonly onConsumed?: (chunk: Uint8Array) => void;
}

/**
 * Compresses a tar stream: gzip (level 6, as `gzip -6`), zstd (level 3, as `zstd -3`, with
 * zstd's checksum, in 2 MiB frames), or none (the stream itself).
 *
 * @param stream The tar bytes.
 * @param compression How to compress them.
 * @param options Told about each chunk once it is consumed (gzip and zstd).
 * @returns The compressed bytes; for gzip and zstd each chunk is a buffer of its own, which
 * nothing else sees.
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
  options: CompressOptions = {},
): ReadableStream<Uint8Array> {
  switch (compression) {
    case "none":
      return stream;
    case "gzip":
      return stream.pipeThrough(parallelGzip(options));
    case "zstd":
      return stream.pipeThrough(parallelZstd(options));
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
