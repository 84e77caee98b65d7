/**
 * The small multi-platform image the request-count row pulls, built with the library alone:
 * blobs and manifests go into any {@linkcode Store} by `Store.push` (a memory store, then
 * `copyGraph` takes it to a registry).
 *
 * @module
 */
import {
  bytesSource,
  type Descriptor,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  type Platform,
  type Store,
} from "../mod.ts";

/** Pushes `bytes` as a blob of `mediaType` and returns its descriptor. */
async function pushBytes(
  store: Store,
  mediaType: string,
  bytes: Uint8Array,
  tag?: string,
): Promise<Descriptor> {
  const descriptor = {
    mediaType,
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
  await store.push(descriptor, bytesSource(bytes), { tag });
  return descriptor;
}

/** A JSON document as bytes. */
function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/**
 * Stores an index of one image per platform, tagged `tag`: each image has a layer per entry
 * of `layerSizes`, a gzip of that many random bytes (real gzip, distinct in every image; the config's `diff_ids` are the digests before gzip), and
 * a config naming its platform. Blobs go first, then each manifest by digest, the index last.
 *
 * @param store Where the image goes.
 * @param platforms One image each, in the index's order.
 * @param layerSizes The uncompressed size of each layer of every image.
 * @param tag The index's tag.
 * @returns The index's descriptor, and the layers of each image (in `platforms`' order).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeIndex } from "./images.ts";
 * import { memoryStore } from "../mod.ts";
 *
 * const store = memoryStore();
 * const { index, layers } = await storeIndex(store, [{ os: "linux", architecture: "amd64" }], [10, 20], "v1");
 * assert.equal((await store.resolve("v1")).digest, index.digest);
 * assert.equal(layers[0].length, 2);
 * ```
 */
export async function storeIndex(
  store: Store,
  platforms: readonly Platform[],
  layerSizes: readonly number[],
  tag: string,
): Promise<{ index: Descriptor; layers: Descriptor[][] }> {
  const manifests: Descriptor[] = [];
  const layers: Descriptor[][] = [];
  for (const platform of platforms) {
    const blobs: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const size of layerSizes) {
      const raw = crypto.getRandomValues(new Uint8Array(size));
      const gzip = await new Response(
        new Blob([raw]).stream().pipeThrough(new CompressionStream("gzip")),
      ).bytes();
      blobs.push(await pushBytes(store, OCI_LAYER_GZIP_MEDIA_TYPE, gzip));
      diffIds.push(digestOf(raw));
    }
    const config = await pushBytes(
      store,
      OCI_CONFIG_MEDIA_TYPE,
      json({
        ...platform,
        rootfs: { type: "layers", diff_ids: diffIds },
      }),
    );
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config,
      layers: blobs,
    };
    manifests.push({
      ...await pushBytes(store, OCI_MANIFEST_MEDIA_TYPE, json(manifest)),
      platform,
    });
    layers.push(blobs);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests,
  };
  return {
    index: await pushBytes(store, OCI_INDEX_MEDIA_TYPE, json(index), tag),
    layers,
  };
}
