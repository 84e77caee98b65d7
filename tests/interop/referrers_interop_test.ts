// Interoperability of what attach writes: skopeo reads the artifact and the fallback index
// byte for byte on distribution 2.8 and on the embedded registry.
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { fetchManifest } from "../../src/store/store.ts";
import { pushArtifact } from "../../src/image/artifact.ts";
import { attachArtifact } from "../../src/image/referrers.ts";
import { referrersTag } from "../../src/store/remote/referrers.ts";
import { registryTest } from "../support/registries.ts";

async function skopeoRaw(ref: string): Promise<string> {
  const out = await new Deno.Command("skopeo", {
    args: ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `skopeo inspect ${ref} failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

registryTest(
  "skopeo inspect --raw reads an attached artifact (and distribution's fallback index) byte for byte",
  async (start, backend) => {
    await using registry = await start();
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/sig`, "signature");
      const ref = parseReference(`${registry.host}/interop/app`);
      const store = remoteStore(ref);
      const image = await pushArtifact(store, [{ path: `${dir}/sig` }], {
        artifactType: "application/x.image",
        tag: "v1",
      });
      const { descriptor } = await attachArtifact(
        store,
        "v1",
        [{ path: `${dir}/sig`, mediaType: "text/plain" }],
        { artifactType: "application/x.sig" },
      );
      const raw = await skopeoRaw(
        `${registry.host}/interop/app@${descriptor.digest}`,
      );
      const ours = await fetchManifest(store, descriptor.digest);
      assert.equal(raw, new TextDecoder().decode(ours.bytes));
      const parsed = JSON.parse(raw);
      assert.equal(parsed.subject.digest, image.descriptor.digest);
      assert.equal(parsed.artifactType, "application/x.sig");
      if (backend === "distribution") {
        const index = JSON.parse(
          await skopeoRaw(
            `${registry.host}/interop/app:${
              referrersTag(image.descriptor.digest)
            }`,
          ),
        );
        assert.deepEqual(
          index.manifests.map((m: { digest: string }) => m.digest),
          [descriptor.digest],
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { peers: ["skopeo"] },
);
