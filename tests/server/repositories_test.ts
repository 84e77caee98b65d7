// A repository of the embedded registry is a Store: images copy into it in-process and are
// served over HTTP, blobs stay per repository, and copies between repositories mount.
import assert from "node:assert/strict";
import { createRegistry } from "../../src/server/handler.ts";
import {
  layoutRepositories,
  memoryRepositories,
  type Repositories,
} from "../../src/server/repositories.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { type CallOptions, isManifestOrIndex } from "../../src/store/store.ts";
import type { Descriptor } from "../../src/oci/manifest.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { copyImage } from "../../src/image/copy.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { makeImage, storeIndex } from "../support/images.ts";

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64" },
];

function repositoriesTest(
  name: string,
  fn: (repositories: Repositories) => Promise<void>,
) {
  for (const kind of ["memory", "layout"]) {
    Deno.test(`${name} [${kind}]`, async () => {
      const root = await Deno.makeTempDir({ prefix: "oci-repositories-" });
      try {
        await fn(
          kind === "memory"
            ? memoryRepositories()
            : await layoutRepositories(root),
        );
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    });
  }
}

repositoriesTest(
  "an index copied into a repository in-process is served over HTTP, and only there",
  async (repositories) => {
    const source = memoryStore();
    const images = PLATFORMS.map((p, i) => makeImage(p, [1000, 3000], i + 1));
    const { descriptor } = await storeIndex(source, images, { tag: "v1" });
    const app = repositories.get("team/app");
    const copied = await copyImage(source, app, "v1", { platform: "all" });
    assert.equal(copied.descriptor.digest, descriptor.digest);
    assert.deepEqual(await app.listTags(), ["v1"]);

    await using registry = createRegistry({ repositories });
    const served = remoteStore(parseReference("registry.test/team/app"), {
      opener: registry,
    });
    const back = memoryStore();
    const pulled = await copyImage(served, back, "v1", { platform: "all" });
    assert.equal(pulled.descriptor.digest, descriptor.digest);
    assert.equal(pulled.blobsCopied, 6);

    const layer = images[0].layers[0].descriptor;
    assert.ok(await app.exists(layer));
    assert.ok(!(await repositories.get("team/other").exists(layer)));
    const elsewhere = await registry(
      new Request(`http://registry.test/v2/team/other/blobs/${layer.digest}`),
    );
    assert.equal(elsewhere.status, 404);
    await elsewhere.body?.cancel();
  },
);

repositoriesTest(
  "a copy between two repositories mounts the blobs instead of moving bytes",
  async (repositories) => {
    const source = memoryStore();
    const image = makeImage(PLATFORMS[0], [2000, 4000], 7);
    await storeIndex(source, [image], { tag: "v1" });
    const a = repositories.get("a");
    const b = repositories.get("b");
    await copyImage(source, a, "v1", { platform: "all" });
    assert.ok(b.canMount(a));
    assert.ok(!b.canMount(source));
    // A copy of a (the spread keeps it a's) that counts the blob bytes read out of it.
    let blobReads = 0;
    const counted = {
      ...a,
      fetch: (descriptor: Descriptor, options?: CallOptions) => {
        if (!isManifestOrIndex(descriptor.mediaType)) blobReads++;
        return a.fetch(descriptor, options);
      },
    };
    await copyImage(counted, b, "v1", { platform: "all" });
    assert.equal(blobReads, 0, "no blob bytes moved");
    for (const blob of [image.config, ...image.layers]) {
      assert.equal(await b.blobSize(blob.descriptor.digest), blob.bytes.length);
    }
    // Unlinking from b leaves a's copy.
    const layer = image.layers[0].descriptor;
    assert.ok(await b.delete(layer));
    assert.equal(await b.blobSize(layer.digest), undefined);
    assert.equal(await a.blobSize(layer.digest), layer.size);
  },
);
