/**
 * Copying an image into OCI media types (`oci copy --format oci`): Docker v2s2 manifests and
 * manifest lists become OCI manifests and indexes (new digests), their configs and layers are
 * listed with the OCI types that say the same (`ociMediaType`: the same bytes and digests, a
 * Docker config being a valid OCI config), so a layout written from a Docker-format image is
 * read by skopeo's and umoci's `oci:` transports.
 *
 * @module
 */
import type { Descriptor, ImageIndex, ImageManifest } from "../oci/manifest.ts";
import {
  isIndexMediaType,
  isManifestMediaType,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  ociMediaType,
} from "../oci/media_types.ts";
import { encodeManifest } from "../store/remote/manifests.ts";
import type { Store } from "../store/store.ts";
import { bytesSource } from "../transport/request_body.ts";
import { copyBlobs, type CopyOptions, type CopyResult } from "./copy.ts";
import { readManifest } from "./resolve.ts";

/** One manifest or index that got a new digest in the conversion. */
export interface Conversion {
  /** The source's digest. */
  readonly source: string;
  /** The source's media type. */
  readonly sourceMediaType: string;
  /** The converted one's descriptor. */
  readonly descriptor: Descriptor;
}

/** What {@linkcode copyAsOci} did. */
export interface CopyAsOciResult extends CopyResult {
  /** The manifests and indexes converted, children first (empty when all were OCI). */
  readonly converted: readonly Conversion[];
}

/** A descriptor with its media type in OCI terms (digest and size as they are). */
function asOci(descriptor: Descriptor): Descriptor {
  return { ...descriptor, mediaType: ociMediaType(descriptor.mediaType) };
}

/**
 * Copies an image, index or manifest list into `target` in OCI media types: each Docker
 * manifest is rewritten as an OCI manifest (its config and layers relabelled, the blobs copied
 * as they are) and each manifest list as an OCI index of the converted children, pushed under
 * new digests; manifests already OCI keep their bytes and digests. The root goes under `tag`.
 *
 * @param source Where the image is.
 * @param target Where it goes.
 * @param root The image's descriptor at the source.
 * @param options Copy options (tag, concurrency, attempts, progress, signal).
 * @returns The root's new descriptor, the blob counts and what was converted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyAsOci } from "./convert.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const source = memoryStore();
 * const config = new TextEncoder().encode('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
 * const configDescriptor = { mediaType: "application/vnd.docker.container.image.v1+json", digest: digestOf(config), size: config.byteLength };
 * await source.push(configDescriptor, bytesSource(config));
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: configDescriptor, layers: [] }));
 * const root = { mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest: digestOf(bytes), size: bytes.byteLength };
 * await source.push(root, bytesSource(bytes));
 * const target = memoryStore();
 * const result = await copyAsOci(source, target, root, { tag: "v1" });
 * assert.equal(result.descriptor.mediaType, "application/vnd.oci.image.manifest.v1+json");
 * assert.notEqual(result.descriptor.digest, root.digest);
 * assert.equal(result.converted[0].source, root.digest);
 * assert.equal((await target.resolve("v1")).digest, result.descriptor.digest);
 * ```
 */
export async function copyAsOci(
  source: Store,
  target: Store,
  root: Descriptor,
  options: Omit<CopyOptions, "platform"> = {},
): Promise<CopyAsOciResult> {
  const { signal } = options;
  const converted: Conversion[] = [];
  let copied = 0;
  let mounted = 0;
  let skipped = 0;
  const visit = async (
    descriptor: Descriptor,
    tag: string | undefined,
    depth: number,
  ): Promise<Descriptor> => {
    const fetched = await readManifest(source, descriptor, options);
    const mediaType = fetched.descriptor.mediaType;
    let document: ImageManifest | ImageIndex;
    let newType: string;
    let changed = false;
    if (isIndexMediaType(mediaType)) {
      if (depth >= (options.maxDepth ?? 3)) {
        throw new RangeError(
          `Cannot convert ${source.name}@${root.digest}: indexes nest deeper than ${
            options.maxDepth ?? 3
          }`,
        );
      }
      const index = fetched.document as ImageIndex;
      const manifests: Descriptor[] = [];
      for (const entry of index.manifests) {
        if (
          !isManifestMediaType(entry.mediaType) &&
          !isIndexMediaType(entry.mediaType)
        ) {
          manifests.push(entry);
          continue;
        }
        const child = await visit(entry, undefined, depth + 1);
        changed ||= child.digest !== entry.digest;
        manifests.push({
          ...entry,
          mediaType: child.mediaType,
          digest: child.digest,
          size: child.size,
        });
      }
      newType = OCI_INDEX_MEDIA_TYPE;
      document = { ...index, mediaType: newType, manifests };
    } else {
      const manifest = fetched.document as ImageManifest;
      const counts = await copyBlobs(
        source,
        target,
        [manifest.config, ...manifest.layers],
        options,
      );
      copied += counts.copied;
      mounted += counts.mounted;
      skipped += counts.skipped;
      newType = OCI_MANIFEST_MEDIA_TYPE;
      changed = [manifest.config, ...manifest.layers].some((d) =>
        ociMediaType(d.mediaType) !== d.mediaType
      );
      document = {
        ...manifest,
        mediaType: newType,
        config: asOci(manifest.config),
        layers: manifest.layers.map(asOci),
      };
    }
    const unchanged = mediaType === newType && !changed;
    // Already OCI: the same bytes, the same digest.
    const { bytes, digest, size } = unchanged
      ? { ...fetched.descriptor, bytes: fetched.bytes }
      : encodeManifest(document);
    const out: Descriptor = {
      mediaType: newType,
      digest,
      size,
      ...(document.artifactType ? { artifactType: document.artifactType } : {}),
    };
    await target.push(out, bytesSource(bytes), { tag, signal });
    if (!unchanged) {
      converted.push({
        source: fetched.descriptor.digest,
        sourceMediaType: mediaType,
        descriptor: out,
      });
    }
    return out;
  };
  try {
    const descriptor = await visit(root, options.tag, 0);
    return {
      descriptor,
      blobsCopied: copied,
      blobsMounted: mounted,
      blobsSkipped: skipped,
      converted,
    };
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}
