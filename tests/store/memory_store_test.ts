// memoryStore(): a Store in memory that copies work from and to like any other.
import assert from "node:assert/strict";
import { memoryStore } from "../../src/store/memory_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { fetchBytes, fetchManifest } from "../../src/store/store.ts";
import { copyImage } from "../../src/image/copy.ts";
import { DigestMismatchError, digestOf } from "../../src/oci/digest.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import type { ImageIndex } from "../../src/oci/manifest.ts";
import { makeImage, storeIndex } from "../support/images.ts";

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64" },
];

Deno.test("memoryStore: an index built there copies to a layout and back with the same digests", async () => {
  const source = memoryStore();
  const images = PLATFORMS.map((p, i) => makeImage(p, [1000, 2000], i + 1));
  const { descriptor } = await storeIndex(source, images, { tag: "v1" });
  assert.deepEqual(await source.listTags(), ["v1"]);
  const dir = await Deno.makeTempDir({ prefix: "oci-memory-" });
  try {
    const layout = await layoutStore(dir);
    const there = await copyImage(source, layout, "v1", { platform: "all" });
    assert.equal(there.descriptor.digest, descriptor.digest);
    assert.equal(there.blobsCopied, 6);
    const back = memoryStore();
    const result = await copyImage(layout, back, "v1", { platform: "all" });
    assert.equal(result.descriptor.digest, descriptor.digest);
    const fetched = await fetchManifest(back, "v1");
    assert.equal(fetched.descriptor.digest, descriptor.digest);
    assert.equal((fetched.document as ImageIndex).manifests.length, 2);
    for (const image of images) {
      for (const blob of [image.config, ...image.layers]) {
        assert.deepEqual(
          await fetchBytes(back, blob.descriptor, { maxSize: 1 << 20 }),
          blob.bytes,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("memoryStore: a push whose bytes do not match the descriptor is refused and not kept", async () => {
  const store = memoryStore();
  const descriptor = {
    mediaType: "application/octet-stream",
    digest: digestOf("abc"),
    size: 3,
  };
  await assert.rejects(
    store.push(descriptor, bytesSource("abd")),
    DigestMismatchError,
  );
  assert.equal(await store.exists(descriptor), false);
  await assert.rejects(store.resolve("v1"), Deno.errors.NotFound);
});

Deno.test("memoryStore: ingest stores a stream of unknown digest and returns its descriptor", async () => {
  const store = memoryStore();
  const descriptor = await store.ingest(
    new Response("hello").body!,
    "application/octet-stream",
  );
  assert.deepEqual(descriptor, {
    mediaType: "application/octet-stream",
    digest: digestOf("hello"),
    size: 5,
  });
  assert.equal(
    new TextDecoder().decode(await fetchBytes(store, descriptor)),
    "hello",
  );
});
