// The optional store capabilities the embedded registry serves through (Deleter,
// ReferrerLister, BlobReader, Uploader), the same on memoryStore(), an OCI layout, and a layout
// whose blobs are shared with other layouts.
import assert from "node:assert/strict";
import { memoryStore } from "../../src/store/memory_store.ts";
import { OciLayout, openLayout } from "../../src/store/layout_store.ts";
import {
  type BlobReader,
  type Deleter,
  fetchBytes,
  type ReferrerLister,
  type Store,
  type TagLister,
  type Uploader,
} from "../../src/store/store.ts";
import { DigestMismatchError, digestOf } from "../../src/oci/digest.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { OCI_MANIFEST_MEDIA_TYPE } from "../../src/oci/media_types.ts";
import type { Descriptor } from "../../src/oci/manifest.ts";

type Capable =
  & Store
  & TagLister
  & Deleter
  & ReferrerLister
  & BlobReader
  & Uploader;

/** Registers a test per kind of store. */
function storeTest(name: string, fn: (store: Capable) => Promise<void>) {
  const kinds: [string, (dir: string) => Promise<Capable>][] = [
    ["memory", () => Promise.resolve(memoryStore())],
    ["layout", (dir) => openLayout(`${dir}/layout`)],
    [
      "layout of shared blobs",
      (dir) => openLayout(`${dir}/repo`, { blobs: `${dir}/.blobs` }),
    ],
  ];
  for (const [kind, open] of kinds) {
    Deno.test(`${name} [${kind}]`, async () => {
      const dir = await Deno.makeTempDir();
      try {
        await fn(await open(dir));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

const text = (value: unknown) => JSON.stringify(value);

function manifest(extra: Record<string, unknown> = {}): {
  descriptor: Descriptor;
  bytes: string;
} {
  const bytes = text({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: digestOf("{}"),
      size: 2,
    },
    layers: [],
    ...extra,
  });
  return {
    descriptor: {
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: digestOf(bytes),
      size: bytes.length,
    },
    bytes,
  };
}

storeTest(
  "untag keeps the manifest by digest; delete removes it with its tags",
  async (store) => {
    const { descriptor, bytes } = manifest();
    await store.push(descriptor, bytesSource(bytes), { tag: "v1" });
    await store.push(descriptor, bytesSource(bytes), { tag: "v2" });
    assert.ok(await store.untag("v1"));
    assert.equal(await store.untag("v1"), false);
    assert.deepEqual(await store.listTags(), ["v2"]);
    assert.equal(
      (await store.resolve(descriptor.digest)).digest,
      descriptor.digest,
    );
    assert.ok(await store.delete(descriptor));
    assert.deepEqual(await store.listTags(), []);
    await assert.rejects(
      store.resolve(descriptor.digest),
      Deno.errors.NotFound,
    );
    await assert.rejects(store.resolve("v2"), Deno.errors.NotFound);
    assert.equal(await store.delete(descriptor), false);
  },
);

storeTest(
  "referrers are the manifests whose subject is the digest, filtered by artifact type",
  async (store) => {
    const subject = manifest();
    await store.push(subject.descriptor, bytesSource(subject.bytes), {
      tag: "v1",
    });
    const signature = manifest({
      artifactType: "application/x.signature",
      subject: subject.descriptor,
      annotations: { by: "me" },
    });
    const sbom = manifest({
      artifactType: "application/x.sbom",
      subject: subject.descriptor,
    });
    for (const referrer of [signature, sbom]) {
      await store.push(referrer.descriptor, bytesSource(referrer.bytes), {
        tag: referrer.descriptor.digest.slice(7, 20),
      });
    }
    const all = await store.referrers(subject.descriptor.digest);
    assert.deepEqual(
      all.map((d) => d.digest).sort(),
      [signature.descriptor.digest, sbom.descriptor.digest].sort(),
    );
    const signatures = await store.referrers(subject.descriptor.digest, {
      artifactType: "application/x.signature",
    });
    assert.deepEqual(signatures, [{
      ...signature.descriptor,
      artifactType: "application/x.signature",
      annotations: { by: "me" },
    }]);
    assert.deepEqual(await store.referrers(digestOf("nothing")), []);
  },
);

storeTest(
  "blobs are served by digest, whole or a byte range, with their size",
  async (store) => {
    const bytes = "0123456789".repeat(300_000);
    const descriptor = {
      mediaType: "application/octet-stream",
      digest: digestOf(bytes),
      size: bytes.length,
    };
    assert.equal(await store.blobSize(descriptor.digest), undefined);
    await store.push(descriptor, bytesSource(bytes));
    assert.equal(await store.blobSize(descriptor.digest), bytes.length);
    assert.equal(
      await new Response(await store.readBlob(descriptor.digest)).text(),
      bytes,
    );
    const range = { start: 1_500_003, end: 2_600_000 };
    assert.equal(
      await new Response(
        await store.readBlob(descriptor.digest, { range }),
      ).text(),
      bytes.slice(range.start, range.end + 1),
    );
    await assert.rejects(
      store.readBlob(digestOf("missing")),
      Deno.errors.NotFound,
    );
  },
);

storeTest(
  "an upload in pieces is stored under its digest; a failed piece is undone; a wrong digest keeps nothing",
  async (store) => {
    const upload = await store.startUpload();
    await upload.append(new Response("hello ").body!);
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("half"));
        controller.error(new Error("the sender went away"));
      },
    });
    await assert.rejects(upload.append(failing), /went away/);
    assert.equal(upload.size, 6);
    await upload.append(new Response("world").body!);
    assert.equal(upload.digest(), digestOf("hello world"));
    const descriptor = await upload.commit(digestOf("hello world"));
    assert.equal(descriptor.size, 11);
    assert.equal(
      new TextDecoder().decode(await fetchBytes(store, descriptor)),
      "hello world",
    );
    const wrong = await store.startUpload();
    await wrong.append(new Response("actual").body!);
    await assert.rejects(
      wrong.commit(digestOf("expected")),
      DigestMismatchError,
    );
    await wrong.cancel();
    assert.equal(await store.blobSize(digestOf("actual")), undefined);
    assert.equal(await store.blobSize(digestOf("expected")), undefined);
  },
);

Deno.test("layouts of shared blobs: one blob directory, each layout holds what its index.json names", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const blobs = `${dir}/.blobs`;
    const a = await openLayout(`${dir}/a`, { blobs });
    const b = await openLayout(`${dir}/b`, { blobs });
    const { descriptor, bytes } = manifest();
    await a.push(descriptor, bytesSource(bytes));
    // Entered untagged, found by digest with the media type it was pushed with.
    const index = await a.readIndex();
    assert.deepEqual(index.manifests, [descriptor]);
    assert.equal(
      (await a.resolve(descriptor.digest)).mediaType,
      descriptor.mediaType,
    );
    assert.ok(await a.exists(descriptor));
    // The bytes are in the shared directory, and b does not hold them.
    assert.equal(
      await Deno.realPath(`${dir}/a/blobs`),
      await Deno.realPath(blobs),
    );
    assert.ok(!(await b.exists(descriptor)));
    await assert.rejects(b.resolve(descriptor.digest), Deno.errors.NotFound);
    await assert.rejects(b.fetch(descriptor), Deno.errors.NotFound);
    // A delete removes entries, never the shared file.
    await b.push(descriptor, bytesSource(bytes), { tag: "v1" });
    assert.ok(await a.delete(descriptor));
    assert.equal((await b.resolve("v1")).digest, descriptor.digest);
    await assert.rejects(
      a.delete({ ...descriptor, mediaType: "application/octet-stream" }),
      /shared/,
    );
    // A layout of its own blobs deletes the file too.
    const own = await openLayout(`${dir}/own`);
    await own.push(descriptor, bytesSource(bytes), { tag: "v1" });
    assert.ok(await own.delete(descriptor));
    assert.ok(!(await own.hasBlob(descriptor.digest)));
    assert.ok(own instanceof OciLayout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
