import assert from "node:assert/strict";
import { openLayout, REF_NAME_ANNOTATION } from "../src/layout/layout.ts";
import { DigestMismatchError, digestOf } from "../src/reference/digest.ts";
import { bytesSource } from "../src/transport/request_body.ts";

async function withLayout(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listBlobs(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
    names.push(entry.name);
  }
  return names.sort();
}

Deno.test("openLayout() creates oci-layout and an empty index, and refuses another version", async () => {
  await withLayout(async (dir) => {
    await openLayout(`${dir}/cache`);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${dir}/cache/oci-layout`)),
      { imageLayoutVersion: "1.0.0" },
    );
    const index = JSON.parse(
      await Deno.readTextFile(`${dir}/cache/index.json`),
    );
    assert.deepEqual(index, {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [],
    });
    await openLayout(`${dir}/cache`);
    await Deno.writeTextFile(
      `${dir}/cache/oci-layout`,
      '{"imageLayoutVersion":"2.0.0"}',
    );
    await assert.rejects(
      openLayout(`${dir}/cache`),
      /imageLayoutVersion "2.0.0", expected "1.0.0"/,
    );
  });
});

Deno.test("writeBlob() leaves nothing behind when the bytes are wrong", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    await assert.rejects(
      layout.writeBlob(digestOf("right"), bytesSource("wrong").open()),
      DigestMismatchError,
    );
    await assert.rejects(
      layout.writeBlob(digestOf("right"), bytesSource("right").open(), {
        size: 4,
      }),
      /expected 4 bytes, got 5/,
    );
    assert.deepEqual(await listBlobs(dir), []);
    assert.equal(await layout.hasBlob(digestOf("right")), false);
  });
});

Deno.test("writeBlob() survives concurrent writers of the same blob", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const bytes = new Uint8Array(2 << 20).map((_, i) => (i * 31) % 256);
    const digest = digestOf(bytes);
    await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          layout.writeBlob(digest, bytesSource(bytes).open(), {
            size: bytes.byteLength,
          }),
      ),
    );
    assert.deepEqual(
      await listBlobs(dir),
      [digest.slice(7)],
      "one blob, no temporary files",
    );
    assert.equal(
      digestOf(await Deno.readFile(layout.blobPath(digest))),
      digest,
    );
    assert.ok(
      await layout.hasBlob(digest, { size: bytes.byteLength, verify: true }),
    );
  });
});

Deno.test("tag() writes index.json entries with ref.name, replaces by name, and serialises updates", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const descriptor = (text: string) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: digestOf(text),
      size: text.length,
    });
    await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => layout.tag(descriptor(`m${i}`), `t${i}`),
      ),
    );
    const index = await layout.readIndex();
    assert.equal(index.manifests.length, 20, "no update was lost");
    await layout.tag(descriptor("new"), "t3");
    assert.equal((await layout.resolve("t3"))?.digest, digestOf("new"));
    const entries = (await layout.readIndex()).manifests.filter((m) =>
      m.annotations?.[REF_NAME_ANNOTATION] === "t3"
    );
    assert.equal(entries.length, 1);
    assert.equal(await layout.resolve("missing"), undefined);
    assert.deepEqual(
      await layout.resolve("t3"),
      descriptor("new"),
      "the name annotation is not part of the descriptor",
    );
    const leftovers = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.includes(".tmp-")) leftovers.push(entry.name);
    }
    assert.deepEqual(leftovers, []);
  });
});

Deno.test("readIndex() names the file when index.json is not JSON", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    await Deno.writeTextFile(`${dir}/index.json`, "{broken");
    await assert.rejects(
      layout.readIndex(),
      /Cannot parse .*index\.json: not JSON/,
    );
  });
});

Deno.test("openLayout removes what a killed writer left and keeps what a live writer holds", async () => {
  const { createTemporary } = await import("../src/layout/files.ts");
  const dir = await Deno.makeTempDir({ prefix: "oci-layout-" });
  try {
    await openLayout(dir);
    const hex = "ab".repeat(32);
    const abandoned = `${dir}/blobs/sha256/${hex}.tmp-11-22`;
    await Deno.writeTextFile(abandoned, "half a blob");
    await Deno.writeTextFile(`${dir}/index.json.tmp-33-44`, "{");
    const live = await createTemporary(
      `${dir}/blobs/sha256/${"cd".repeat(32)}`,
    );
    // Another process opens the layout: it must not touch the live writer's file.
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openLayout } from ${
          JSON.stringify(
            new URL("../src/layout/layout.ts", import.meta.url).href,
          )
        }; await openLayout(${JSON.stringify(dir)});`,
      ],
    }).output();
    assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
    const names = [];
    for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
      names.push(entry.name);
    }
    assert.deepEqual(names, [live.temp.split("/").pop()]);
    await assert.rejects(
      Deno.stat(`${dir}/index.json.tmp-33-44`),
      Deno.errors.NotFound,
    );
    live.file.close();
    live.lock.close();
    // Once its writer is gone, the same file is abandoned too.
    await openLayout(dir);
    const after = [];
    for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
      after.push(entry.name);
    }
    assert.deepEqual(after, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
