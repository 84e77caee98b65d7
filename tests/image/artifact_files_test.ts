/**
 * `writeArtifactFiles` over stores: files by title (nested titles make their directories), the
 * empty layer of a file-less artifact skipped, every title checked before anything is written
 * (absolute, `..`, NUL, twice), nothing written through a symlinked parent, nothing left for a
 * blob the store lacks; with a stage, the blobs land there first and are read back from it.
 */
import assert from "node:assert/strict";
import { writeArtifactFiles } from "../../src/image/artifact_files.ts";
import { UnsafeTitleError } from "../../src/image/artifact_files.ts";
import { pushArtifact, TITLE_ANNOTATION } from "../../src/image/artifact.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import type { ImageManifest } from "../../src/oci/manifest.ts";
import { digestOf } from "../../src/oci/digest.ts";
import type { Store } from "../../src/store/store.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An artifact of `files` (title to text) pushed to a memory store. */
async function artifactOf(
  dir: string,
  files: Record<string, string>,
): Promise<{ store: Store; manifest: ImageManifest }> {
  const store = memoryStore();
  const list = [];
  for (const [i, [title, text]] of Object.entries(files).entries()) {
    await Deno.writeTextFile(`${dir}/in${i}`, text);
    list.push({ path: `${dir}/in${i}`, title });
  }
  const { manifest } = await pushArtifact(store, list, {
    artifactType: "application/x.test",
  });
  return { store, manifest };
}

/** The manifest with its first layer's title replaced. */
function retitled(manifest: ImageManifest, title: string): ImageManifest {
  const [first, ...rest] = manifest.layers;
  return {
    ...manifest,
    layers: [{
      ...first,
      annotations: { ...first.annotations, [TITLE_ANNOTATION]: title },
    }, ...rest],
  };
}

Deno.test("writeArtifactFiles() writes each file by title, nested titles in their directories", async () => {
  await withDir(async (dir) => {
    const { store, manifest } = await artifactOf(dir, {
      "a.txt": "a",
      "docs/deep/b.md": "b",
    });
    const written = await writeArtifactFiles(store, manifest, `${dir}/out`);
    assert.deepEqual(written.map((f) => f.title), ["a.txt", "docs/deep/b.md"]);
    assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "a");
    assert.equal(await Deno.readTextFile(`${dir}/out/docs/deep/b.md`), "b");
  });
});

Deno.test("writeArtifactFiles() of an artifact without files writes nothing (its empty layer is no file)", async () => {
  await withDir(async (dir) => {
    const store = memoryStore();
    const { manifest } = await pushArtifact(store, [], {
      artifactType: "application/x.none",
    });
    assert.deepEqual(
      await writeArtifactFiles(store, manifest, `${dir}/out`),
      [],
    );
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)], []);
  });
});

for (
  const [title, why] of [
    ["../escape.txt", /\.\. component/],
    ["/etc/passwd", /absolute path/],
    ["C:/x", /absolute path/],
    ["a\0b", /NUL/],
    ["./", /empty/],
  ] as const
) {
  Deno.test(`writeArtifactFiles() refuses the title ${JSON.stringify(title)} before writing anything`, async () => {
    await withDir(async (dir) => {
      const { store, manifest } = await artifactOf(dir, {
        "first.txt": "1",
        "second.txt": "2",
      });
      // The bad title is the second: the first must not have been written either.
      const bad = {
        ...manifest,
        layers: [
          manifest.layers[0],
          retitled({ ...manifest, layers: [manifest.layers[1]] }, title)
            .layers[0],
        ],
      };
      await assert.rejects(
        writeArtifactFiles(store, bad, `${dir}/out`),
        (error: unknown) =>
          error instanceof UnsafeTitleError && why.test(error.message),
      );
      assert.equal(
        await Deno.stat(`${dir}/out`).catch(() => undefined),
        undefined,
      );
    });
  });
}

Deno.test("writeArtifactFiles() refuses two layers with the same title, and a symlinked parent", async () => {
  await withDir(async (dir) => {
    const { store, manifest } = await artifactOf(dir, {
      "x/a.txt": "a",
      "x/b.txt": "b",
    });
    await assert.rejects(
      writeArtifactFiles(store, retitled(manifest, "x/./b.txt"), `${dir}/out`),
      /same title/,
    );
    await Deno.mkdir(`${dir}/elsewhere`);
    await Deno.mkdir(`${dir}/out`);
    await Deno.symlink(`${dir}/elsewhere`, `${dir}/out/x`);
    await assert.rejects(
      writeArtifactFiles(store, manifest, `${dir}/out`),
      /symlink/,
    );
    assert.deepEqual([...Deno.readDirSync(`${dir}/elsewhere`)], []);
  });
});

Deno.test("writeArtifactFiles() leaves nothing at a title whose blob the store lacks", async () => {
  await withDir(async (dir) => {
    const { store, manifest } = await artifactOf(dir, { "a.txt": "a" });
    const wrong = {
      ...manifest,
      layers: [{ ...manifest.layers[0], digest: digestOf("b") }],
    };
    await assert.rejects(writeArtifactFiles(store, wrong, `${dir}/out`));
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)], []);
  });
});

Deno.test("writeArtifactFiles() with a stage copies the blobs into it, then writes from it", async () => {
  await withDir(async (dir) => {
    const { store, manifest } = await artifactOf(dir, { "a.txt": "staged" });
    const stage = await openLayout(`${dir}/stage`);
    const states: string[] = [];
    await writeArtifactFiles(store, manifest, `${dir}/out`, {
      stage,
      onBlob: (_, state) => states.push(state),
    });
    assert.ok(await stage.exists(manifest.layers[0]));
    assert.ok(states.includes("done"));
    assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "staged");
    // The stage is enough the second time: the source is not read.
    const empty = memoryStore();
    await writeArtifactFiles(empty, manifest, `${dir}/again`, { stage });
    assert.equal(await Deno.readTextFile(`${dir}/again/a.txt`), "staged");
  });
});
