/**
 * OCI and Docker media types, and guards that tell manifests from indexes.
 *
 * @module
 */

/** An OCI image manifest. */
export const OCI_MANIFEST_MEDIA_TYPE =
  "application/vnd.oci.image.manifest.v1+json";
/** An OCI image index. */
export const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
/** A Docker image manifest, schema 2. */
export const DOCKER_MANIFEST_MEDIA_TYPE =
  "application/vnd.docker.distribution.manifest.v2+json";
/** A Docker manifest list. */
export const DOCKER_MANIFEST_LIST_MEDIA_TYPE =
  "application/vnd.docker.distribution.manifest.list.v2+json";
/** An OCI image config. */
export const OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json";
/** A Docker image config. */
export const DOCKER_CONFIG_MEDIA_TYPE =
  "application/vnd.docker.container.image.v1+json";
/** The empty config of an artifact (`{}`). */
export const OCI_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json";
/** An uncompressed tar layer. */
export const OCI_LAYER_TAR_MEDIA_TYPE =
  "application/vnd.oci.image.layer.v1.tar";
/** A gzip-compressed tar layer. */
export const OCI_LAYER_GZIP_MEDIA_TYPE =
  "application/vnd.oci.image.layer.v1.tar+gzip";
/** A zstd-compressed tar layer. */
export const OCI_LAYER_ZSTD_MEDIA_TYPE =
  "application/vnd.oci.image.layer.v1.tar+zstd";
/** Docker's gzip-compressed tar layer. */
export const DOCKER_LAYER_GZIP_MEDIA_TYPE =
  "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker's zstd-compressed tar layer (containerd and buildkit write it). */
export const DOCKER_LAYER_ZSTD_MEDIA_TYPE =
  "application/vnd.docker.image.rootfs.diff.tar.zstd";
/** Docker's uncompressed tar layer. */
export const DOCKER_LAYER_TAR_MEDIA_TYPE =
  "application/vnd.docker.image.rootfs.diff.tar";

/** Media types of single-image manifests, OCI first. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  OCI_MANIFEST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
];
/** Media types of indexes (multi-platform), OCI first. */
export const INDEX_MEDIA_TYPES: readonly string[] = [
  OCI_INDEX_MEDIA_TYPE,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
];
/** Every manifest and index media type, for `Accept`. */
export const ALL_MANIFEST_MEDIA_TYPES: readonly string[] = [
  ...MANIFEST_MEDIA_TYPES,
  ...INDEX_MEDIA_TYPES,
];

/** Drops media-type parameters (`; charset=utf-8`) and case. */
function baseType(mediaType: string | null | undefined): string {
  return (mediaType ?? "").split(";")[0].trim().toLowerCase();
}

/**
 * Tells whether a media type is an image manifest (OCI or Docker).
 *
 * @param mediaType A media type, parameters allowed.
 * @returns True for a manifest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isManifestMediaType } from "./media_types.ts";
 * assert.ok(isManifestMediaType("application/vnd.oci.image.manifest.v1+json; charset=utf-8"));
 * assert.ok(!isManifestMediaType("application/json"));
 * ```
 */
export function isManifestMediaType(
  mediaType: string | null | undefined,
): boolean {
  return MANIFEST_MEDIA_TYPES.includes(baseType(mediaType));
}

/**
 * Tells whether a media type is an index (OCI image index or Docker manifest list).
 *
 * @param mediaType A media type, parameters allowed.
 * @returns True for an index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isIndexMediaType } from "./media_types.ts";
 * assert.ok(isIndexMediaType("application/vnd.docker.distribution.manifest.list.v2+json"));
 * ```
 */
export function isIndexMediaType(
  mediaType: string | null | undefined,
): boolean {
  return INDEX_MEDIA_TYPES.includes(baseType(mediaType));
}

/** Docker's foreign (non-distributable) gzip layer, as Windows base images use. */
export const DOCKER_FOREIGN_LAYER_GZIP_MEDIA_TYPE =
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/** OCI's non-distributable gzip layer (deprecated by image-spec 1.1, still read). */
export const OCI_NONDISTRIBUTABLE_LAYER_GZIP_MEDIA_TYPE =
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/** Docker's media types and the OCI ones that say the same. */
const DOCKER_TO_OCI: Readonly<Record<string, string>> = {
  [DOCKER_MANIFEST_MEDIA_TYPE]: OCI_MANIFEST_MEDIA_TYPE,
  [DOCKER_MANIFEST_LIST_MEDIA_TYPE]: OCI_INDEX_MEDIA_TYPE,
  [DOCKER_CONFIG_MEDIA_TYPE]: OCI_CONFIG_MEDIA_TYPE,
  [DOCKER_LAYER_GZIP_MEDIA_TYPE]: OCI_LAYER_GZIP_MEDIA_TYPE,
  [DOCKER_LAYER_ZSTD_MEDIA_TYPE]: OCI_LAYER_ZSTD_MEDIA_TYPE,
  [DOCKER_LAYER_TAR_MEDIA_TYPE]: OCI_LAYER_TAR_MEDIA_TYPE,
  [DOCKER_FOREIGN_LAYER_GZIP_MEDIA_TYPE]:
    OCI_NONDISTRIBUTABLE_LAYER_GZIP_MEDIA_TYPE,
};

/**
 * The OCI media type that says what a Docker one says (manifest, manifest list, config and
 * layers); any other media type is returned as it is. The bytes a descriptor points at do not
 * change: a layer keeps its digest, and a Docker config is a valid OCI config.
 *
 * @param mediaType A media type.
 * @returns Its OCI equivalent, or itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ociMediaType } from "./media_types.ts";
 * assert.equal(
 *   ociMediaType("application/vnd.docker.image.rootfs.diff.tar.gzip"),
 *   "application/vnd.oci.image.layer.v1.tar+gzip",
 * );
 * assert.equal(ociMediaType("application/vnd.oci.image.layer.v1.tar"), "application/vnd.oci.image.layer.v1.tar");
 * ```
 */
export function ociMediaType(mediaType: string): string {
  return DOCKER_TO_OCI[baseType(mediaType)] ?? mediaType;
}
