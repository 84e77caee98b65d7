/**
 * `copyAsOci` over stores: a Docker manifest list of v2s2 manifests (built in a memory store
 * with Docker media types) becomes an OCI index of OCI manifests under new digests, children
 * first, with the same blobs relabelled; an image already OCI keeps its bytes and digest.
 */
import assert from "node:assert/strict";
import { copyAsOci } from "../../src/image/convert.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { fetchManifest, type Store } from "../../src/store/store.ts";
import { encodeManifest } from "../../src/store/remote/manifests.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import {
  DOCKER_CONFIG_MEDIA_TYPE,
  DOCKER_LAYER_GZIP_MEDIA_TYPE,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../../src/oci/manifest.ts";
import { makeImage, storeImage, type TestImage } from "../support/images.ts";

/** The same image with Docker media types on its manifest, config and layers. */
function asDocker(image: TestImage): TestImage {
  return {
    ...image,
    manifest: {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
      config: { ...image.manifest.config, mediaType: DOCKER_CONFIG_MEDIA_TYPE },
      layers: image.manifest.layers.map((l) => ({
        ...l,
        mediaType: DOCKER_LAYER_GZIP_MEDIA_TYPE,
      })),
    },
  };
}

async function putDocument(
  store: Store,
  document: ImageManifest | ImageIndex,
  tag?: string,
): Promise<Descriptor> {
  const { bytes, digest, size } = encodeManifest(document);
  const descriptor = { mediaType: document.mediaType!, digest, size };
  await store.push(descriptor, bytesSource(bytes), { tag });
  return descriptor;
}

const AMD64 = { os: "linux", architecture: "amd64" };
const ARM64 = { os: "linux", architecture: "arm64", variant: "v8" };

Deno.test("copyAsOci() turns a Docker manifest list of v2s2 manifests into an OCI index of OCI manifests", async () => {
  const source = memoryStore();
  const images = [makeImage(AMD64, [300, 40], 1), makeImage(ARM64, [200], 2)]
    .map(asDocker);
  const children: Descriptor[] = [];
  for (const image of images) {
    children.push({
      ...await storeImage(source, image),
      platform: image.platform,
    });
  }
  const list = await putDocument(source, {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST_MEDIA_TYPE,
    manifests: children,
  }, "v1");

  const target = memoryStore();
  const result = await copyAsOci(source, target, list, { tag: "v1" });
  assert.equal(result.descriptor.mediaType, OCI_INDEX_MEDIA_TYPE);
  assert.notEqual(result.descriptor.digest, list.digest);
  assert.equal(result.blobsCopied, 2 + 3, "two configs and three layers");
  // Children first, then the index; each names its source digest and type.
  assert.deepEqual(
    result.converted.map((c) => [c.source, c.sourceMediaType]),
    [
      [children[0].digest, DOCKER_MANIFEST_MEDIA_TYPE],
      [children[1].digest, DOCKER_MANIFEST_MEDIA_TYPE],
      [list.digest, DOCKER_MANIFEST_LIST_MEDIA_TYPE],
    ],
  );
  assert.equal((await target.resolve("v1")).digest, result.descriptor.digest);

  const index = (await fetchManifest(target, "v1")).document as ImageIndex;
  assert.equal(index.mediaType, OCI_INDEX_MEDIA_TYPE);
  assert.deepEqual(index.manifests.map((m) => m.platform), [AMD64, ARM64]);
  for (const [i, entry] of index.manifests.entries()) {
    assert.equal(entry.mediaType, OCI_MANIFEST_MEDIA_TYPE);
    assert.equal(entry.digest, result.converted[i].descriptor.digest);
    const { document } = await fetchManifest(target, entry.digest);
    const manifest = document as ImageManifest;
    assert.equal(manifest.mediaType, OCI_MANIFEST_MEDIA_TYPE);
    assert.equal(manifest.config.mediaType, OCI_CONFIG_MEDIA_TYPE);
    assert.equal(manifest.config.digest, images[i].manifest.config.digest);
    assert.deepEqual(
      manifest.layers.map((l) => [l.mediaType, l.digest]),
      images[i].manifest.layers.map((
        l,
      ) => [OCI_LAYER_GZIP_MEDIA_TYPE, l.digest]),
    );
    for (const blob of [manifest.config, ...manifest.layers]) {
      assert.ok(await target.exists(blob));
    }
  }

  // Again: the same new digests, no blob moved.
  const again = await copyAsOci(source, target, list, { tag: "v1" });
  assert.equal(again.descriptor.digest, result.descriptor.digest);
  assert.equal(again.blobsCopied, 0);
  assert.equal(again.blobsSkipped, 5);
});

Deno.test("copyAsOci() keeps an OCI image's bytes and digest, converting nothing", async () => {
  const source = memoryStore();
  const descriptor = await storeImage(source, makeImage(AMD64, [100], 3), {
    tag: "v1",
  });
  const target = memoryStore();
  const result = await copyAsOci(source, target, descriptor, { tag: "v1" });
  assert.deepEqual(result.converted, []);
  assert.equal(result.descriptor.digest, descriptor.digest);
  assert.equal((await target.resolve("v1")).digest, descriptor.digest);
});
