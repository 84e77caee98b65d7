// copyImage / copyMissingLayers between registries and OCI layouts, on the real distribution registry.
import assert from "node:assert/strict";
import { parseReference, withTag } from "../../src/oci/reference.ts";
import {
  copyBlobs,
  copyImage,
  copyMissingLayers,
} from "../../src/image/copy.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import type { Store } from "../../src/store/store.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { resolveImage } from "../../src/image/resolve.ts";
import { blobExists } from "../../src/store/remote/blobs.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { makeImage, pushTestImage, pushTestIndex } from "../support/images.ts";
import { registryTest } from "../support/registries.ts";
import { recordingOpener } from "../support/recording.ts";

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
];

registryTest(
  "copyImage() copies one platform between two registries, blobs before the manifest",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport, log } = recordingOpener();
    const src = parseReference(`${a.host}/team/app:v1`);
    const dst = parseReference(`${b.host}/mirror/app`);
    const images = PLATFORMS.map((p, i) =>
      makeImage(p, [3000, 4000, 5000], i + 1)
    );
    const { manifests } = await pushTestIndex(src, images, { transport });
    log.length = 0;
    const result = await copyImage(
      remoteStore(src, { transport }),
      remoteStore(dst, { transport }),
      "v1",
      {
        platform: parsePlatform("linux/arm64"),
      },
    );
    assert.equal(result.descriptor.digest, manifests[1].digest);
    assert.equal(result.blobsCopied, 4);
    assert.equal(result.blobsMounted, 0, "two registries: bytes sent");
    const puts = log.filter((l) => l.startsWith("PUT"));
    assert.equal(puts.length, 5);
    assert.match(
      puts.at(-1)!,
      /\/manifests\/v1 201$/,
      "the manifest goes last",
    );
    const copied = await resolveImage(remoteStore(dst, { transport }), "v1", {
      platform: parsePlatform("linux/arm64"),
    });
    assert.equal(copied.manifest.descriptor.digest, manifests[1].digest);
    // Again: nothing moves.
    const again = await copyImage(
      remoteStore(src, { transport }),
      remoteStore(dst, { transport }),
      "v1",
      {
        platform: parsePlatform("linux/arm64"),
      },
    );
    assert.deepEqual([again.blobsCopied, again.blobsSkipped], [0, 4]);
    assert.equal(again.blobsMounted, 0);
  },
);

registryTest(
  "copyImage() with all platforms copies the index and every image",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport } = recordingOpener();
    const src = parseReference(`${a.host}/app:v2`);
    const dst = parseReference(`${b.host}/app`);
    const images = PLATFORMS.map((p, i) => makeImage(p, [1000, 2000], i + 10));
    const { descriptor } = await pushTestIndex(src, images, { transport });
    const result = await copyImage(
      remoteStore(src, { transport }),
      remoteStore(dst, { transport }),
      "v2",
      {
        platform: "all",
        concurrency: 2,
      },
    );
    assert.equal(result.descriptor.digest, descriptor.digest);
    assert.equal(result.blobsCopied, 6);
    const top = await fetchManifest(withTag(dst, "v2"), { transport });
    assert.equal(top.descriptor.digest, descriptor.digest);
    for (const p of PLATFORMS) {
      await resolveImage(remoteStore(dst, { transport }), "v2", {
        platform: p,
      });
    }
  },
);

registryTest(
  "copyImage() within one registry mounts: no blob bytes are sent",
  async (start) => {
    await using a = await start();
    const { transport, log } = recordingOpener();
    const src = parseReference(`${a.host}/base/image:v1`);
    const dst = parseReference(`${a.host}/other/image`);
    await pushTestImage(src, makeImage(PLATFORMS[0], [100_000, 200_000], 3), {
      transport,
    });
    log.length = 0;
    const result = await copyImage(
      remoteStore(src, { transport }),
      remoteStore(dst, { transport }),
      "v1",
      {
        platform: PLATFORMS[0],
      },
    );
    assert.equal(result.blobsCopied, 3);
    assert.equal(result.blobsMounted, 3, "each counted as mounted");
    const blobTraffic = log.filter((l) =>
      /blobs\/uploads\/[^?]/.test(l) || (/^GET .*\/blobs\//.test(l))
    );
    assert.deepEqual(
      blobTraffic,
      [],
      "no PUT of blob bytes and no blob download",
    );
    assert.equal(
      log.filter((l) => l.includes("mount=") && l.endsWith(" 201")).length,
      3,
    );
  },
);

registryTest(
  "copyImage() registry → layout → registry keeps digests, and the layout is a stage",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport, log } = recordingOpener();
    const src = parseReference(`${a.host}/app:v1`);
    const images = PLATFORMS.map((p, i) => makeImage(p, [7000], i + 20));
    const { descriptor } = await pushTestIndex(src, images, { transport });
    const dir = await Deno.makeTempDir();
    try {
      const layout = await layoutStore(dir);
      await copyImage(remoteStore(src, { transport }), layout, "v1", {
        platform: "all",
      });
      log.length = 0;
      const second = await copyImage(
        remoteStore(src, { transport }),
        layout,
        "v1",
        { platform: "all" },
      );
      assert.equal(second.blobsCopied, 0);
      assert.equal(
        log.filter((l) => l.startsWith("GET") && l.includes("/blobs/")).length,
        0,
        "no blob downloads",
      );
      const dst = parseReference(`${b.host}/restored/app`);
      const back = await copyImage(
        layout,
        remoteStore(dst, { transport }),
        "v1",
        { platform: "all" },
      );
      assert.equal(back.descriptor.digest, descriptor.digest);
      const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      assert.equal(
        index.manifests[0].annotations["org.opencontainers.image.ref.name"],
        "v1",
      );
      assert.equal(index.manifests[0].digest, descriptor.digest);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

registryTest(
  "copyMissingLayers() checks every layer and moves only the missing ones",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport, log } = recordingOpener();
    const base = parseReference(`${a.host}/base:22.04`);
    const target = parseReference(`${b.host}/built`);
    const image = makeImage(PLATFORMS[0], [1000, 2000, 3000], 30);
    await pushTestImage(base, image, { transport });
    log.length = 0;
    const { manifest, config } = await copyMissingLayers(
      remoteStore(base, { transport }),
      remoteStore(target, { transport }),
      "22.04",
      { platform: PLATFORMS[0] },
    );
    assert.deepEqual(manifest, image.manifest);
    assert.equal(config.architecture, "amd64");
    assert.equal(
      log.filter((l) => l.startsWith("HEAD") && l.includes(b.host)).length,
      3,
    );
    assert.equal(
      log.filter((l) => l.startsWith("POST")).length,
      3,
      "three layers uploaded, not the config",
    );
    assert.equal(
      await blobExists(target, image.config.descriptor.digest, { transport }),
      false,
    );
    log.length = 0;
    await copyMissingLayers(
      remoteStore(base, { transport }),
      remoteStore(target, { transport }),
      "22.04",
      {
        platform: PLATFORMS[0],
      },
    );
    assert.equal(log.filter((l) => l.startsWith("POST")).length, 0);
    assert.equal(
      log.filter((l) => l.startsWith("HEAD") && l.includes(b.host)).length,
      3,
    );
  },
);

registryTest(
  "copyImage() with a cache passes blobs through the stage and reuses them",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport, log } = recordingOpener();
    const src = parseReference(`${a.host}/app:v1`);
    const image = makeImage(PLATFORMS[0], [6000, 7000], 70);
    await pushTestImage(src, image, { transport });
    const dir = await Deno.makeTempDir();
    try {
      const cache = await openLayout(dir);
      await copyImage(
        remoteStore(src, { transport }),
        remoteStore(parseReference(`${b.host}/one`), { transport }),
        "v1",
        {
          platform: PLATFORMS[0],
          cache,
        },
      );
      for (const blob of [image.config, ...image.layers]) {
        assert.ok(
          await cache.hasBlob(blob.descriptor.digest, {
            size: blob.descriptor.size,
            verify: true,
          }),
        );
      }
      log.length = 0;
      await copyImage(
        remoteStore(src, { transport }),
        remoteStore(parseReference(`${b.host}/two`), { transport }),
        "v1",
        {
          platform: PLATFORMS[0],
          cache,
        },
      );
      assert.equal(
        log.filter((l) => l.startsWith("GET") && l.includes("/blobs/")).length,
        0,
        "served from the cache",
      );
      assert.equal(
        log.filter((l) => l.startsWith("PUT") && l.includes("/blobs/")).length,
        3,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("copyBlobs with onBlob hands the target a byte stream (BYOB reads, no queued copies)", async () => {
  const source = memoryStore();
  const bytes = new Uint8Array(3 * 1024 * 1024).fill(7);
  const descriptor = {
    mediaType: "application/octet-stream",
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
  await source.push(descriptor, bytesSource(bytes));
  const target = memoryStore();
  let byob = false;
  const watching: Store = {
    ...target,
    name: target.name,
    exists: (d, o) => target.exists(d, o),
    fetch: (d, o) => target.fetch(d, o),
    resolve: (r, o) => target.resolve(r, o),
    push(d, blob, options) {
      const stream = blob.open();
      const reader = stream.getReader({ mode: "byob" });
      byob = true;
      reader.releaseLock();
      return target.push(d, { size: blob.size, open: () => stream }, options);
    },
  };
  let reported = 0;
  await copyBlobs(source, watching, [descriptor], {
    onBlob: (_, _state, progress) => reported = progress.done,
  });
  assert.ok(byob);
  assert.equal(reported, bytes.byteLength);
  assert.ok(await target.exists(descriptor));
});
