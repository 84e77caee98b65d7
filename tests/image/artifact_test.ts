// pushArtifact's config: the empty one by default, a given file labelled with its media type or
// the guidance's "unknown" config type (never the empty type, which means the bytes `{}`).
import assert from "node:assert/strict";
import { pushArtifact } from "../../src/image/artifact.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { fetchManifest } from "../../src/store/store.ts";
import type { ImageManifest } from "../../src/oci/manifest.ts";

async function withFiles(
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "notes");
    await Deno.writeTextFile(`${dir}/config.json`, '{"a":1}');
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function configOf(
  config: { path: string; mediaType?: string } | undefined,
  dir: string,
) {
  const store = memoryStore();
  await pushArtifact(store, [{ path: `${dir}/notes.txt` }], {
    artifactType: "application/vnd.example",
    config,
    tag: "v1",
  });
  const { document } = await fetchManifest(store, "v1");
  return (document as ImageManifest).config;
}

Deno.test("pushArtifact: no config gives the empty config {}", async () => {
  await withFiles(async (dir) => {
    const config = await configOf(undefined, dir);
    assert.equal(config.mediaType, "application/vnd.oci.empty.v1+json");
    assert.equal(config.size, 2);
  });
});

Deno.test("pushArtifact: a config file without a media type is the unknown config type", async () => {
  await withFiles(async (dir) => {
    const config = await configOf({ path: `${dir}/config.json` }, dir);
    assert.equal(config.mediaType, "application/vnd.unknown.config.v1+json");
    assert.equal(config.size, 7);
  });
});

Deno.test("pushArtifact: a config file keeps the media type it is given", async () => {
  await withFiles(async (dir) => {
    const config = await configOf({
      path: `${dir}/config.json`,
      mediaType: "application/vnd.example.config+json",
    }, dir);
    assert.equal(config.mediaType, "application/vnd.example.config+json");
  });
});
