/**
 * Content management over stores, on every backend and in memory / on disk: retag without
 * moving a blob, a manifest's exact bytes (and a platform's child), a manifest put from bytes,
 * blobs to a file (verified; nothing left on a mismatch) and from a file, and whole-repository
 * mirroring (every tag, skipping those already there).
 */
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { pushArtifact } from "../../src/image/artifact.ts";
import { tagManifest } from "../../src/image/tag.ts";
import {
  putManifestBytes,
  readManifestBytes,
} from "../../src/image/manifest_bytes.ts";
import { downloadBlob, uploadFile } from "../../src/image/blob.ts";
import { copyAllTags } from "../../src/image/copy_tags.ts";
import { fetchBytes, type Store } from "../../src/store/store.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { registryTest } from "../support/registries.ts";
import { recordingOpener } from "../support/recording.ts";
import { makeImage, pushTestIndex } from "../support/images.ts";

async function artifact(store: Store, tag: string, text: string) {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, text);
    return await pushArtifact(store, [{ path }], {
      artifactType: "application/x.test",
      tag,
    });
  } finally {
    await Deno.remove(path);
  }
}

registryTest(
  "tagManifest() puts the same manifest bytes under new tags and moves no blob",
  async (start) => {
    await using registry = await start();
    const { transport, log } = recordingOpener();
    const store = remoteStore(parseReference(`${registry.host}/app`), {
      transport,
    });
    const { descriptor } = await artifact(store, "v1", "x");
    log.length = 0;
    const tagged = await tagManifest(store, "v1", ["latest", "stable"]);
    assert.equal(tagged.digest, descriptor.digest);
    assert.ok(log.every((line) => !/\/blobs\//.test(line)), log.join("\n"));
    assert.equal(log.filter((l) => l.startsWith("PUT")).length, 2);
    for (const tag of ["latest", "stable"]) {
      const read = await readManifestBytes(store, tag);
      assert.equal(read.descriptor.digest, descriptor.digest);
    }
  },
);

registryTest(
  "readManifestBytes() gives the exact bytes, by platform out of an index; putManifestBytes() checks first",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/app:multi`);
    const images = [
      makeImage({ os: "linux", architecture: "amd64" }, [100], 1),
      makeImage({ os: "linux", architecture: "arm64" }, [100], 2),
    ];
    const { descriptor, manifests } = await pushTestIndex(ref, images, {
      transport,
    });
    const store = remoteStore(ref, { transport });
    const top = await readManifestBytes(store, "multi");
    assert.equal(top.descriptor.digest, descriptor.digest);
    assert.equal(digestOf(top.bytes), descriptor.digest);
    const arm = await readManifestBytes(store, "multi", {
      platform: { os: "linux", architecture: "arm64" },
    });
    assert.equal(arm.descriptor.digest, manifests[1].digest);
    await assert.rejects(
      readManifestBytes(store, "multi", {
        platform: { os: "linux", architecture: "s390x" },
      }),
      /available: linux\/amd64, linux\/arm64/,
    );
    // The child's bytes put back under a tag: the same digest, the media type from the document.
    const put = await putManifestBytes(store, "arm", arm.bytes);
    assert.equal(put.digest, arm.descriptor.digest);
    assert.equal(put.mediaType, arm.descriptor.mediaType);
    assert.equal((await store.resolve("arm")).digest, arm.descriptor.digest);
    assert.throws(
      () => putManifestBytes(store, "bad", new TextEncoder().encode("[]")),
      /not a JSON object/,
    );
    assert.throws(
      () => putManifestBytes(store, descriptor.digest, arm.bytes),
      /its bytes have the digest/,
    );
  },
);

registryTest(
  "downloadBlob() writes verified bytes only; uploadFile() stores a file once",
  async (start) => {
    await using registry = await start();
    const dir = await Deno.makeTempDir();
    try {
      const { transport } = recordingOpener();
      const store = remoteStore(parseReference(`${registry.host}/app`), {
        transport,
      });
      await Deno.writeTextFile(`${dir}/in`, "blob bytes");
      const first = await uploadFile(store, `${dir}/in`);
      assert.equal(first.descriptor.digest, digestOf("blob bytes"));
      assert.equal(first.sent, true);
      assert.equal((await uploadFile(store, `${dir}/in`)).sent, false);
      assert.equal(
        await downloadBlob(store, first.descriptor, `${dir}/out`),
        10,
      );
      assert.equal(await Deno.readTextFile(`${dir}/out`), "blob bytes");
      // Asked for other bytes (a wrong size): an error, and the file as it was.
      await assert.rejects(
        downloadBlob(store, { ...first.descriptor, size: 3 }, `${dir}/out2`),
      );
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(names, ["in", "out"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("downloadBlob() from a store whose bytes are damaged keeps nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = memoryStore();
    const descriptor = {
      mediaType: "application/octet-stream",
      digest: digestOf("good"),
      size: 4,
    };
    // Stored without the check: the bytes are not the digest's.
    await store.push(descriptor, bytesSource("evil"), { verified: true });
    await Deno.writeTextFile(`${dir}/out`, "before");
    await assert.rejects(downloadBlob(store, descriptor, `${dir}/out`));
    assert.equal(await Deno.readTextFile(`${dir}/out`), "before");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["out"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

registryTest(
  "copyAllTags() mirrors every tag in parallel, skips tags already there, reports each",
  async (start) => {
    await using a = await start();
    await using b = await start();
    const { transport } = recordingOpener();
    const source = remoteStore(parseReference(`${a.host}/cache`), {
      transport,
    });
    const target = remoteStore(parseReference(`${b.host}/mirror/cache`), {
      transport,
    });
    for (const tag of ["a", "b", "c", "d", "e"]) {
      await artifact(source, tag, `content of ${tag}`);
    }
    const seen: string[] = [];
    const results = await copyAllTags(source, target, {
      tagConcurrency: 3,
      onTag: (r) => seen.push(`${r.tag} ${r.status}`),
    });
    assert.deepEqual(results.map((r) => r.status), Array(5).fill("copied"));
    assert.equal(seen.length, 5);
    assert.deepEqual((await target.listTags()).sort(), [
      "a",
      "b",
      "c",
      "d",
      "e",
    ]);
    // One tag moved at the source: only it is copied again.
    await artifact(source, "c", "new content of c");
    const again = await copyAllTags(source, target);
    assert.deepEqual(
      // In the source's tag order, which distribution does not sort.
      again.map((r) => `${r.tag} ${r.status}`).sort(),
      ["a skipped", "b skipped", "c copied", "d skipped", "e skipped"],
    );
    assert.equal(
      (await target.resolve("c")).digest,
      (await source.resolve("c")).digest,
    );
  },
);

Deno.test("copyAllTags() from a memory store into an OCI layout and back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const memory = memoryStore();
    await artifact(memory, "one", "1");
    await artifact(memory, "two", "2");
    const layout = await layoutStore(dir);
    const results = await copyAllTags(memory, layout);
    assert.deepEqual(results.map((r) => r.status), ["copied", "copied"]);
    const back = memoryStore();
    await copyAllTags(layout, back);
    const bytes = await fetchBytes(back, await back.resolve("two"));
    assert.equal(digestOf(bytes), (await memory.resolve("two")).digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
