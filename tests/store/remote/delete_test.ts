/**
 * Deletes through remoteStore on every backend (manifest by digest, tag where the registry
 * allows it, blob), and the refusal of a registry whose deletes are turned off.
 */
import assert from "node:assert/strict";
import { parseReference } from "../../../src/oci/reference.ts";
import { remoteStore } from "../../../src/store/remote_store.ts";
import { DeleteRefusedError } from "../../../src/store/remote/delete.ts";
import { pushArtifact } from "../../../src/image/artifact.ts";
import { tagManifest } from "../../../src/image/tag.ts";
import { startDistribution } from "../../../peers/distribution.ts";
import { requirePeer } from "../../../peers/available.ts";
import { serveRegistry } from "../../../src/server/serve.ts";
import { registryTest } from "../../support/registries.ts";
import { recordingOpener } from "../../support/recording.ts";

async function artifactIn(store: Parameters<typeof pushArtifact>[0]) {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, `content ${crypto.randomUUID()}`);
    return await pushArtifact(store, [{ path }], {
      artifactType: "application/x.test",
      tag: "v1",
    });
  } finally {
    await Deno.remove(path);
  }
}

registryTest(
  "remoteStore deletes a manifest by digest (with its tags), a tag where allowed, a blob",
  async (start, backend) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const store = remoteStore(parseReference(`${registry.host}/app`), {
      transport,
    });
    const { descriptor, manifest } = await artifactIn(store);
    await tagManifest(store, "v1", ["v2"]);
    // The tag: embedded untags (the manifest stays); distribution 2.8 cannot delete tags.
    if (backend === "distribution") {
      const error = await store.untag("v1").catch((e) => e);
      assert.ok(error instanceof DeleteRefusedError, String(error));
      assert.match(error.message, /by digest/);
      assert.ok(error.hasCode("DIGEST_INVALID"));
    } else {
      assert.equal(await store.untag("v1"), true);
      assert.equal(await store.untag("v1"), false);
      assert.equal(
        (await store.resolve(descriptor.digest)).digest,
        descriptor.digest,
      );
    }
    assert.equal(await store.delete(descriptor), true);
    await assert.rejects(
      store.resolve(descriptor.digest),
      /404|MANIFEST_UNKNOWN/,
    );
    await assert.rejects(store.resolve("v2"), /404|MANIFEST_UNKNOWN/);
    assert.equal(await store.delete(descriptor), false);
    const layer = manifest.layers[0];
    assert.equal(await store.exists(layer), true);
    assert.equal(await store.delete(layer), true);
    assert.equal(await store.exists(layer), false);
    assert.equal(await store.delete(layer), false);
  },
);

Deno.test({
  name:
    "deletes refused by distribution without storage.delete.enabled: DeleteRefusedError, 405 UNSUPPORTED",
  ...requirePeer("docker-registry"),
  async fn() {
    await using registry = await startDistribution({ deleteEnabled: false });
    const store = remoteStore(parseReference(`${registry.host}/app`));
    const { descriptor, manifest } = await artifactIn(store);
    for (const target of [descriptor, manifest.layers[0]]) {
      const error = await store.delete(target).catch((e) => e);
      assert.ok(error instanceof DeleteRefusedError, String(error));
      assert.equal(error.status, 405);
      assert.ok(error.hasCode("UNSUPPORTED"));
      assert.match(error.message, /storage\.delete\.enabled/);
    }
    assert.equal((await store.resolve("v1")).digest, descriptor.digest);
  },
});

Deno.test("deletes refused by the embedded registry with delete: false: DeleteRefusedError", async () => {
  await using server = await serveRegistry({ delete: false });
  const store = remoteStore(parseReference(`${server.host}/app`));
  const { descriptor } = await artifactIn(store);
  for (
    const attempt of [() => store.delete(descriptor), () => store.untag("v1")]
  ) {
    const error = await attempt().catch((e) => e);
    assert.ok(error instanceof DeleteRefusedError, String(error));
    assert.equal(error.status, 405);
  }
});
