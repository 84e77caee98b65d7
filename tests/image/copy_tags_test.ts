/**
 * `copyAllTags` with tags that share blobs and manifests: each is written once and never by two
 * tags at once. Distribution 2.8 refused such overlapping writes (`400 DIGEST_INVALID`,
 * `MANIFEST_BLOB_UNKNOWN`: a manifest put read a link file another tag's mount was rewriting).
 */
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import type { Store } from "../../src/store/store.ts";
import { copyAllTags } from "../../src/image/copy_tags.ts";
import { tagManifest } from "../../src/image/tag.ts";
import { registryTest } from "../support/registries.ts";
import { makeImage, storeIndex } from "../support/images.ts";

const IMAGES = [
  makeImage({ os: "linux", architecture: "amd64" }, [100, 200, 300, 50], 1),
  makeImage({ os: "linux", architecture: "arm64" }, [100, 200, 30], 2),
];
const TAGS = Array.from({ length: 12 }, (_, i) => `v${i}`);

async function sharedTags(store: Store): Promise<void> {
  await storeIndex(store, IMAGES, { tag: "v0" });
  await tagManifest(store, "v0", TAGS.slice(1));
}

registryTest(
  "copyAllTags() of many tags sharing an index and its blobs, in parallel, copies every one",
  async (start) => {
    await using registry = await start();
    const source = remoteStore(parseReference(`${registry.host}/app`), {
      transport: registry.opener,
    });
    await sharedTags(source);
    // Several rounds: without the share, distribution refused some tag in nearly every one.
    for (const round of [1, 2, 3]) {
      const target = remoteStore(
        parseReference(`${registry.host}/mirror${round}`),
        { transport: registry.opener },
      );
      const results = await copyAllTags(source, target, { tagConcurrency: 8 });
      assert.deepEqual(
        results.filter((r) => r.status !== "copied").map((r) =>
          `${r.tag}: ${r.error}`
        ),
        [],
      );
      // Two configs and seven layers, each moved by one tag only.
      assert.equal(results.reduce((n, r) => n + r.blobsCopied, 0), 9);
    }
  },
);

/** A memory store whose pushes take a while, recording how many of one digest overlap. */
function slowStore() {
  const store = memoryStore();
  const inFlight = new Map<string, number>();
  const pushes: string[] = [];
  let overlaps = 0;
  const push: Store["push"] = async (descriptor, source, options) => {
    const now = (inFlight.get(descriptor.digest) ?? 0) + 1;
    inFlight.set(descriptor.digest, now);
    if (now > 1) overlaps++;
    pushes.push(`${descriptor.digest}${options?.tag ? `:${options.tag}` : ""}`);
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return await store.push(descriptor, source, options);
    } finally {
      inFlight.set(descriptor.digest, inFlight.get(descriptor.digest)! - 1);
    }
  };
  const target: typeof store = Object.assign(Object.create(store), { push });
  return { target, pushes, overlaps: () => overlaps };
}

Deno.test("copyAllTags() writes a blob or manifest the tags share once, never two at once", async () => {
  const source = memoryStore();
  await sharedTags(source);
  const { target, pushes, overlaps } = slowStore();
  const results = await copyAllTags(source, target, { tagConcurrency: 8 });
  assert.deepEqual(results.map((r) => r.status), Array(12).fill("copied"));
  assert.equal(overlaps(), 0);
  // Nine blobs and two image manifests once each, the index once per tag.
  const untagged = pushes.filter((p) => !p.includes(":v"));
  assert.equal(untagged.length, 11);
  assert.equal(new Set(untagged).size, 11);
  assert.deepEqual(
    pushes.filter((p) => p.includes(":v")).map((p) => p.split(":").at(-1))
      .sort(),
    [...TAGS].sort(),
  );
  assert.deepEqual((await target.listTags()).sort(), [...TAGS].sort());
});
