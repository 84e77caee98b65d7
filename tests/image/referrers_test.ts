/**
 * Referrers over every backend: attach an artifact to an image, find it by the referrers API
 * (embedded registry) or the fallback tag (distribution 2.8, which has no API), as a tree, and
 * copy the referrers graph along with an image; in memory and in a layout too.
 */
import assert from "node:assert/strict";
import { parseReference, withTag } from "../../src/oci/reference.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import {
  fetchReferrers,
  readReferrersIndex,
  referrersTag,
} from "../../src/store/remote/referrers.ts";
import { pushArtifact, TITLE_ANNOTATION } from "../../src/image/artifact.ts";
import {
  attachArtifact,
  copyReferrers,
  listReferrers,
  referrerTree,
} from "../../src/image/referrers.ts";
import { copyGraph } from "../../src/image/copy.ts";
import type { Store } from "../../src/store/store.ts";
import { registryTest } from "../support/registries.ts";
import { recordingOpener } from "../support/recording.ts";

async function file(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** An image (an artifact standing in for one), a signature on it and an SBOM with its own signature. */
async function attachAll(store: Store, dir: string) {
  const image = await pushArtifact(
    store,
    [{
      path: await file(dir, "app.bin", "app"),
      mediaType: "application/x.app",
    }],
    { artifactType: "application/x.image", tag: "v1" },
  );
  const signature = await attachArtifact(
    store,
    "v1",
    [{ path: await file(dir, "sig", "signed v1") }],
    { artifactType: "application/x.sig" },
  );
  const sbom = await attachArtifact(
    store,
    image.descriptor.digest,
    [{
      path: await file(dir, "sbom.json", "{}"),
      mediaType: "application/spdx+json",
    }],
    {
      artifactType: "application/spdx+json",
      annotations: { "org.example.kind": "sbom" },
    },
  );
  const sbomSignature = await attachArtifact(
    store,
    sbom.descriptor.digest,
    [{ path: await file(dir, "sbom.sig", "signed sbom") }],
    { artifactType: "application/x.sig" },
  );
  return { image, signature, sbom, sbomSignature };
}

registryTest(
  "attachArtifact() makes a referrer the API or the fallback tag finds; referrerTree() nests",
  async (start, backend) => {
    await using registry = await start();
    const dir = await Deno.makeTempDir();
    try {
      const { transport } = recordingOpener();
      const ref = parseReference(`${registry.host}/team/app`);
      const store = remoteStore(ref, { transport });
      const { image, signature, sbom, sbomSignature } = await attachAll(
        store,
        dir,
      );
      assert.equal(signature.subject.digest, image.descriptor.digest);
      assert.equal(signature.manifest.subject?.digest, image.descriptor.digest);
      assert.equal(
        signature.manifest.config.mediaType,
        "application/vnd.oci.empty.v1+json",
      );
      assert.equal(
        signature.manifest.layers[0].annotations?.[TITLE_ANNOTATION],
        "sig",
      );

      const api = await fetchReferrers(ref, image.descriptor.digest, {
        transport,
      });
      const fallback = await readReferrersIndex(ref, image.descriptor.digest, {
        transport,
      });
      if (backend === "distribution") {
        // No referrers API: the fallback index under sha256-<hex> holds both referrers.
        assert.equal(api, undefined);
        assert.deepEqual(
          fallback.map((d) => d.digest).sort(),
          [signature.descriptor.digest, sbom.descriptor.digest].sort(),
        );
        const tags = await store.listTags();
        assert.ok(tags.includes(referrersTag(image.descriptor.digest)));
      } else {
        assert.equal(api?.length, 2);
        assert.deepEqual(fallback, [], "no fallback tag where the API is");
      }

      const found = await listReferrers(store, image.descriptor.digest);
      assert.deepEqual(
        found.map((d) => [d.digest, d.artifactType]).sort(),
        [
          [signature.descriptor.digest, "application/x.sig"],
          [sbom.descriptor.digest, "application/spdx+json"],
        ].sort(),
      );
      assert.equal(
        found.find((d) => d.digest === sbom.descriptor.digest)?.annotations
          ?.["org.example.kind"],
        "sbom",
      );
      const sigsOnly = await listReferrers(store, image.descriptor.digest, {
        artifactType: "application/x.sig",
      });
      assert.deepEqual(sigsOnly.map((d) => d.digest), [
        signature.descriptor.digest,
      ]);

      const tree = await referrerTree(store, image.descriptor.digest, {
        artifactType: "application/spdx+json",
      });
      assert.equal(tree.length, 1);
      assert.equal(tree[0].descriptor.digest, sbom.descriptor.digest);
      assert.deepEqual(
        tree[0].referrers.map((n) => n.descriptor.digest),
        [sbomSignature.descriptor.digest],
      );

      // Attaching the same artifact again leaves one entry.
      await attachArtifact(
        store,
        "v1",
        [{ path: `${dir}/sig` }],
        { artifactType: "application/x.sig" },
      );
      assert.equal(
        (await listReferrers(store, image.descriptor.digest)).length,
        2,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

registryTest(
  "copyReferrers() copies the referrers graph with the image, recursively, to another registry",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const dir = await Deno.makeTempDir();
    try {
      const { transport } = recordingOpener();
      const source = remoteStore(parseReference(`${a.host}/app`), {
        transport,
      });
      const targetRef = parseReference(`${b.host}/mirror/app`);
      const target = remoteStore(targetRef, { transport });
      const { image, signature, sbom, sbomSignature } = await attachAll(
        source,
        dir,
      );
      await copyGraph(source, target, image.descriptor, { tag: "v1" });
      const lines: string[] = [];
      const result = await copyReferrers(source, target, image.descriptor, {
        log: (line) => lines.push(line),
      });
      assert.deepEqual(
        result.referrers.map((d) => d.digest).sort(),
        [
          signature.descriptor.digest,
          sbom.descriptor.digest,
          sbomSignature.descriptor.digest,
        ].sort(),
      );
      assert.equal(
        lines.filter((l) => l.startsWith("Copied referrer")).length,
        3,
      );
      const tree = await referrerTree(target, image.descriptor.digest);
      assert.equal(tree.length, 2);
      const sbomNode = tree.find((n) =>
        n.descriptor.digest === sbom.descriptor.digest
      );
      assert.deepEqual(
        sbomNode?.referrers.map((n) => n.descriptor.digest),
        [sbomSignature.descriptor.digest],
      );
      // The copied referrer's blobs are there.
      const copied = await fetchManifest(
        withTag(targetRef, "v1"),
        { transport },
      );
      assert.equal(copied.descriptor.digest, image.descriptor.digest);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("referrers in a memory store and an OCI layout: attach, list, copy between them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const memory = memoryStore();
    const { image, signature } = await attachAll(memory, dir);
    const layout = await layoutStore(`${dir}/layout`);
    await copyGraph(memory, layout, image.descriptor, { tag: "v1" });
    const { referrers } = await copyReferrers(memory, layout, image.descriptor);
    assert.equal(referrers.length, 3);
    const found = await listReferrers(layout, image.descriptor.digest, {
      artifactType: "application/x.sig",
    });
    assert.deepEqual(found.map((d) => d.digest), [signature.descriptor.digest]);
    // Back out of the layout into a fresh memory store.
    const back = memoryStore();
    await copyGraph(layout, back, image.descriptor, { tag: "v1" });
    assert.equal(
      (await copyReferrers(layout, back, image.descriptor)).referrers.length,
      3,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listReferrers() on a store without a referrers list reads the fallback tag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const memory = memoryStore();
    const { image, signature } = await attachAll(memory, dir);
    const index = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [signature.descriptor],
    }));
    const { digestOf } = await import("../../src/oci/digest.ts");
    const { bytesSource } = await import("../../src/transport/request_body.ts");
    await memory.push(
      {
        mediaType: "application/vnd.oci.image.index.v1+json",
        digest: digestOf(index),
        size: index.byteLength,
      },
      bytesSource(index),
      { tag: referrersTag(image.descriptor.digest) },
    );
    // Only the Store interface: no referrers() of its own.
    const plain: Store = {
      name: memory.name,
      exists: (d, o) => memory.exists(d, o),
      fetch: (d, o) => memory.fetch(d, o),
      push: (d, s, o) => memory.push(d, s, o),
      resolve: (r, o) => memory.resolve(r, o),
    };
    assert.deepEqual(
      (await listReferrers(plain, image.descriptor.digest)).map((d) =>
        d.digest
      ),
      [signature.descriptor.digest],
    );
    assert.deepEqual(
      await listReferrers(plain, signature.descriptor.digest),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
