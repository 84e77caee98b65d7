/**
 * The JSON documents of the image spec: descriptors, manifests, indexes and image configs.
 *
 * @module
 */
import type { Platform } from "./platform.ts";

/** A typed pointer to content: what every manifest, index and layer entry is. */
export interface Descriptor {
  /** The media type of the content pointed to. */
  readonly mediaType: string;
  /** Its digest. */
  readonly digest: string;
  /** Its size in bytes. */
  readonly size: number;
  /** The platform, in index entries. */
  readonly platform?: Platform;
  /** Annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The artifact type, for artifacts. */
  readonly artifactType?: string;
  /** Other URLs the content can be fetched from. */
  readonly urls?: readonly string[];
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  /** Always 2. */
  readonly schemaVersion: 2;
  /** The manifest's media type. */
  readonly mediaType: string;
  /** The artifact type, for artifacts. */
  readonly artifactType?: string;
  /** The image config. */
  readonly config: Descriptor;
  /** The layers, base first. */
  readonly layers: readonly Descriptor[];
  /** The manifest this one refers to (referrers API). */
  readonly subject?: Descriptor;
  /** Annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  /** Always 2. */
  readonly schemaVersion: 2;
  /** The index's media type. */
  readonly mediaType: string;
  /** The artifact type, for artifacts. */
  readonly artifactType?: string;
  /** One entry per platform image (or nested index). */
  readonly manifests: readonly Descriptor[];
  /** The manifest this one refers to. */
  readonly subject?: Descriptor;
  /** Annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image config: the platform, the runtime config and the layers' uncompressed digests. */
export interface ImageConfig {
  /** When the image was made (RFC 3339). */
  readonly created?: string;
  /** CPU architecture. */
  readonly architecture: string;
  /** Operating system. */
  readonly os: string;
  /** CPU variant. */
  readonly variant?: string;
  /** Operating system version. */
  readonly "os.version"?: string;
  /** Runtime defaults (`Env`, `Entrypoint`, `Cmd`, …). */
  readonly config?: Readonly<Record<string, unknown>>;
  /** The uncompressed digests of the layers, in order. */
  readonly rootfs: {
    readonly type: "layers";
    readonly diff_ids: readonly string[];
  };
  /** How each layer was made. */
  readonly history?: readonly Readonly<Record<string, unknown>>[];
}

/**
 * What a manifest or index points to (oras's successors): an image manifest's config and
 * layers, an index's manifests, then the `subject` when there is one.
 *
 * @param manifest The parsed manifest or index.
 * @returns The descriptors, in that order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { successors } from "./manifest.ts";
 * const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: "sha256:c", size: 2 };
 * const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: "sha256:l", size: 3 };
 * const mediaType = "application/vnd.oci.image.manifest.v1+json";
 * assert.deepEqual(successors({ schemaVersion: 2, mediaType, config, layers: [layer] }), [config, layer]);
 * const index = { schemaVersion: 2 as const, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [layer] };
 * assert.deepEqual(successors(index), [layer]);
 * ```
 */
export function successors(
  manifest: ImageManifest | ImageIndex,
): Descriptor[] {
  const down = "manifests" in manifest
    ? [...manifest.manifests]
    : [manifest.config, ...manifest.layers];
  return manifest.subject === undefined ? down : [...down, manifest.subject];
}
