// Interoperability with skopeo on the real distribution registry: what skopeo pushes we read,
// what we push skopeo reads with the same digests, and our layout is one skopeo copies from.
import assert from "node:assert/strict";
import { parseReference, withTag } from "../../src/oci/reference.ts";
import { copyImage } from "../../src/image/copy.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { resolveImage } from "../../src/image/resolve.ts";
import { fetchBlob } from "../../src/store/remote/blobs.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { makeImage, pushTestImage, pushTestIndex } from "../support/images.ts";
import { registryTest } from "../support/registries.ts";

const transport = createOpener({
  credentials: () => Promise.resolve(undefined),
});

async function skopeo(...args: string[]): Promise<string> {
  const out = await new Deno.Command("skopeo", {
    args: ["--insecure-policy", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `skopeo ${args.join(" ")} failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
];

registryTest(
  "skopeo inspects and copies an image we pushed, with identical digests",
  async (start) => {
    await using registry = await start();
    const ref = parseReference(`${registry.host}/ours/app:v1`);
    const images = PLATFORMS.map((p, i) => makeImage(p, [4096, 8192], i + 40));
    const { descriptor } = await pushTestIndex(ref, images, { transport });
    const raw = await skopeo(
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${registry.host}/ours/app:v1`,
    );
    assert.equal(
      digestOf(raw),
      descriptor.digest,
      "skopeo sees the exact bytes we pushed",
    );
    const inspected = JSON.parse(
      await skopeo(
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        `docker://${registry.host}/ours/app:v1`,
      ),
    );
    // skopeo reports the digest of what the tag names (the index) and the arm64 image's layers.
    assert.equal(inspected.Digest, descriptor.digest);
    assert.equal(inspected.Architecture, "arm64");
    assert.deepEqual(
      inspected.Layers,
      images[1].layers.map((l) => l.descriptor.digest),
    );

    const dir = await Deno.makeTempDir();
    try {
      await skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        `docker://${registry.host}/ours/app:v1`,
        `oci:${dir}:copied`,
      );
      const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      assert.equal(index.manifests[0].digest, descriptor.digest);
      for (const image of images) {
        for (const layer of image.layers) {
          const bytes = await Deno.readFile(
            `${dir}/blobs/sha256/${layer.descriptor.digest.slice(7)}`,
          );
          assert.equal(digestOf(bytes), layer.descriptor.digest);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { peers: ["skopeo"] },
);

registryTest(
  "we read an image skopeo pushed with --all from an OCI layout",
  async (start) => {
    await using registry = await start();
    const dir = await Deno.makeTempDir();
    try {
      // Build an OCI layout with our layout store, have skopeo push it, then read it back.
      const staging = await start();
      try {
        const stagingRef = parseReference(`${staging.host}/src:v1`);
        const images = PLATFORMS.map((p, i) =>
          makeImage(p, [2048, 1024], i + 50)
        );
        await pushTestIndex(stagingRef, images, { transport });
        await copyImage(
          remoteStore(stagingRef, { transport }),
          await layoutStore(dir),
          "v1",
          { platform: "all" },
        );
      } finally {
        await staging.stop();
      }
      await skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        `oci:${dir}:v1`,
        `docker://${registry.host}/theirs/app:v1`,
      );
      const ref = parseReference(`${registry.host}/theirs/app:v1`);
      const top = await fetchManifest(ref, { transport });
      const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      assert.equal(top.descriptor.digest, index.manifests[0].digest);
      for (const platform of PLATFORMS) {
        const { manifest } = await resolveImage(
          remoteStore(ref, { transport }),
          "v1",
          { platform },
        );
        for (const layer of manifest.document.layers) {
          const bytes = await new Response(
            await fetchBlob(ref, layer.digest, { transport, size: layer.size }),
          ).arrayBuffer();
          assert.equal(bytes.byteLength, layer.size);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { peers: ["skopeo"] },
);

registryTest(
  "our stage directory is an OCI layout that skopeo copies from by tag",
  async (start) => {
    await using registry = await start();
    const src = parseReference(`${registry.host}/cache/app:v3`);
    const image = makeImage(PLATFORMS[0], [5000], 60);
    const pushed = await pushTestImage(src, image, { transport });
    const dir = await Deno.makeTempDir();
    const out = await Deno.makeTempDir();
    try {
      await copyImage(
        remoteStore(src, { transport }),
        await layoutStore(dir),
        "v3",
        { platform: PLATFORMS[0] },
      );
      await skopeo("copy", `oci:${dir}:v3`, `oci:${out}:again`);
      const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
      assert.equal(index.manifests[0].digest, pushed.digest);
      await skopeo(
        "copy",
        "--dest-tls-verify=false",
        `oci:${dir}:v3`,
        `docker://${registry.host}/cache/app:from-layout`,
      );
      const back = await fetchManifest(withTag(src, "from-layout"), {
        transport,
      });
      assert.equal(back.descriptor.digest, pushed.digest);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
  { peers: ["skopeo"] },
);
