// Bad input from the outside world (issue 7, item 3): broken manifests and indexes, read from a
// registry and from an OCI layout, give the same ManifestError naming what was wrong; odd but
// readable ones are read.
import assert from "node:assert/strict";
import { fetchManifest as fetchStoreManifest } from "../../src/store/store.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { resolveImage } from "../../src/image/resolve.ts";
import {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import { ManifestError } from "../../src/oci/parse_manifest.ts";
import { layoutStore, openLayout } from "../../src/store/layout_store.ts";
import {
  assertTyped,
  CONFIG,
  encoder,
  endlessBody,
  GOOD_MANIFEST,
  json,
  LAYER,
  MiB,
  openerOver,
  REF,
  serving,
  withLayoutDir,
} from "../support/bad_input.ts";

const BAD_MANIFESTS: [string, BodyInit | null, string | null, RegExp][] = [
  [
    "not JSON",
    "this is not json",
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not valid JSON/,
  ],
  [
    "an empty body",
    null,
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not valid JSON/,
  ],
  ["HTML", "<html><body>login</body></html>", "text/html", /not valid JSON/],
  [
    "a JSON array",
    "[1,2]",
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not a JSON object/,
  ],
  ["a JSON string", '"manifest"', OCI_MANIFEST_MEDIA_TYPE, /not a JSON object/],
  ["JSON null", "null", OCI_MANIFEST_MEDIA_TYPE, /not a JSON object/],
  [
    "a wrong Content-Type and no mediaType",
    json({ ...GOOD_MANIFEST, mediaType: undefined }),
    "text/plain",
    /unknown manifest content type "text\/plain"/,
  ],
  [
    "no Content-Type and no mediaType",
    json({ ...GOOD_MANIFEST, mediaType: undefined }),
    null,
    /unknown manifest content type ""/,
  ],
  [
    "a wrong mediaType and no Content-Type",
    json({ ...GOOD_MANIFEST, mediaType: "application/json" }),
    null,
    /\(mediaType "application\/json"\)/,
  ],
  [
    "a mediaType that contradicts the Content-Type",
    json({ ...GOOD_MANIFEST, mediaType: OCI_INDEX_MEDIA_TYPE }),
    OCI_MANIFEST_MEDIA_TYPE,
    /the content type "application\/vnd\.oci\.image\.manifest\.v1\+json" contradicts the document's mediaType "application\/vnd\.oci\.image\.index\.v1\+json"/,
  ],
  [
    "schema version 1",
    json({ ...GOOD_MANIFEST, schemaVersion: 1 }),
    OCI_MANIFEST_MEDIA_TYPE,
    /schemaVersion is 1, not 2/,
  ],
  [
    "without a schemaVersion",
    json({ ...GOOD_MANIFEST, schemaVersion: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /schemaVersion is undefined, not 2/,
  ],
  [
    "no layers",
    json({ ...GOOD_MANIFEST, layers: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no layers array/,
  ],
  [
    "layers that are not an array",
    json({ ...GOOD_MANIFEST, layers: { 0: LAYER } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no layers array/,
  ],
  [
    "no config",
    json({ ...GOOD_MANIFEST, config: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no config descriptor/,
  ],
  [
    "a null layer",
    json({ ...GOOD_MANIFEST, layers: [LAYER, null] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is malformed: layers\[1\] is null, not a descriptor object/,
  ],
  [
    "a layer without mediaType",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, mediaType: undefined }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.mediaType is undefined, not a media type/,
  ],
  [
    "a layer digest that is not a digest",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, digest: "nonsense" }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.digest is "nonsense", not a digest/,
  ],
  [
    "a short sha256 digest",
    json({ ...GOOD_MANIFEST, config: { ...CONFIG, digest: "sha256:abc" } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.digest is not valid: .*needs 64 hex characters, got 3/,
  ],
  [
    "a path in a digest",
    json({
      ...GOOD_MANIFEST,
      layers: [{ ...LAYER, digest: "sha256:../../etc" }],
    }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.digest is "sha256:\.\.\/\.\.\/etc", not a digest/,
  ],
  [
    "a negative size",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, size: -1 }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.size is -1, not a non-negative integer/,
  ],
  [
    "a fractional size",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, size: 1.5 }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.size is 1\.5/,
  ],
  [
    "a string size",
    json({ ...GOOD_MANIFEST, config: { ...CONFIG, size: "2" } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.size is "2", not a non-negative integer/,
  ],
  [
    "a size beyond 2^53",
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":' +
    json(CONFIG).replace('"size":2', '"size":1e300') + ',"layers":[]}',
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.size is 1e\+300/,
  ],
  [
    "a bad subject",
    json({ ...GOOD_MANIFEST, subject: "sha256:x" }),
    OCI_MANIFEST_MEDIA_TYPE,
    /subject is "sha256:x", not a descriptor object/,
  ],
  [
    "an index without manifests",
    json({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE }),
    OCI_INDEX_MEDIA_TYPE,
    /the index has no manifests array/,
  ],
  [
    "an index entry with a string platform",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: "linux/amd64",
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /the index is malformed: manifests\[0\]\.platform is "linux\/amd64", not an object/,
  ],
  [
    "an index entry with a platform without os",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: { architecture: "amd64" },
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /manifests\[0\]\.platform\.os is undefined, not a string/,
  ],
  [
    "an index entry with numeric os.features",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: { os: "windows", architecture: "amd64", "os.features": [1] },
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /manifests\[0\]\.platform\["os\.features"\] is \[1\], not an array of strings/,
  ],
];

/**
 * A layout holding `bytes` as a manifest: tagged `v1` with `type` as its index.json media type
 * (what a Content-Type is to a registry), or, without a type, read by digest.
 */
async function layoutServing(
  dir: string,
  bytes: Uint8Array<ArrayBuffer>,
  type: string | null,
): Promise<{ fetch: () => Promise<unknown> }> {
  const layout = await openLayout(dir);
  const digest = digestOf(bytes);
  await layout.writeBlob(digest, new Response(bytes).body!, {
    size: bytes.byteLength,
  });
  if (type !== null) {
    await layout.tag({ mediaType: type, digest, size: bytes.byteLength }, "v1");
  }
  const store = await layoutStore(layout);
  return {
    fetch: () => fetchStoreManifest(store, type === null ? digest : "v1"),
  };
}

for (const [what, body, type, pattern] of BAD_MANIFESTS) {
  Deno.test(`bad input: a manifest that is ${what} gives a ManifestError naming the request`, async () => {
    const { transport } = serving(body, type);
    await assert.rejects(
      fetchManifest(REF, { transport }),
      (error: unknown) =>
        assertTyped(
          error,
          ManifestError,
          /^GET http:\/\/127\.0\.0\.1:5000\/v2\/app\/manifests\/v1: 200: /,
          pattern,
        ),
    );
  });

  Deno.test(`bad input: a manifest that is ${what} in an OCI layout gives the same ManifestError as from a registry`, async () => {
    // Issue 13: a malformed manifest was refused from a registry and accepted from a layout.
    const bytes = typeof body === "string"
      ? encoder.encode(body)
      : new Uint8Array();
    const fromRegistry = await fetchManifest(REF, {
      transport: serving(body, type).transport,
    }).then(() => undefined, (error: unknown) => error);
    await withLayoutDir(async (dir) => {
      const { fetch } = await layoutServing(dir, bytes, type);
      await assert.rejects(fetch(), (error: unknown) => {
        assertTyped(
          error,
          ManifestError,
          /^Cannot read manifest .*blobs\/sha256\/[0-9a-f]{64}: /,
          pattern,
        );
        assertTyped(fromRegistry, ManifestError);
        const reason = (e: unknown) =>
          (e as Error).message.replace(
            /^(GET \S+: 200|Cannot read manifest \S+): /,
            "",
          );
        assert.equal(reason(error), reason(fromRegistry));
        return true;
      });
    });
  });
}

/** What registries serve that the client reads by the document: [what, body, Content-Type, media type read]. */
const LENIENT_MANIFESTS: [string, string, string, string][] = [
  [
    "as application/json",
    json(GOOD_MANIFEST),
    "application/json",
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  ["as text/plain", json(GOOD_MANIFEST), "text/plain", OCI_MANIFEST_MEDIA_TYPE],
  [
    "with a charset parameter",
    json(GOOD_MANIFEST),
    `${OCI_MANIFEST_MEDIA_TYPE}; charset=utf-8`,
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  [
    "a Docker manifest under the OCI manifest type",
    json({ ...GOOD_MANIFEST, mediaType: DOCKER_MANIFEST_MEDIA_TYPE }),
    OCI_MANIFEST_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  [
    "a Docker manifest list under the OCI index type",
    json({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST_MEDIA_TYPE,
      manifests: [],
    }),
    OCI_INDEX_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
  ],
];

for (const [what, body, type, mediaType] of LENIENT_MANIFESTS) {
  Deno.test(`bad input: a manifest served ${what} is read, from a registry and from a layout`, async () => {
    const fetched = await fetchManifest(REF, {
      transport: serving(body, type).transport,
    });
    assert.equal(fetched.descriptor.mediaType, mediaType);
    await withLayoutDir(async (dir) => {
      const { fetch } = await layoutServing(dir, encoder.encode(body), type);
      const read = await fetch() as typeof fetched;
      assert.equal(read.descriptor.mediaType, mediaType);
      assert.deepEqual(read.document, fetched.document);
    });
  });
}

Deno.test("bad input: unknown fields in manifests, descriptors and platforms are accepted and kept", async () => {
  const manifest = json({
    ...GOOD_MANIFEST,
    unknown: true,
    layers: [{
      ...LAYER,
      mediaType: "application/vnd.example.future+zstd",
      extra: 1,
    }],
  });
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    "x-vendor": { anything: [1, 2, 3] },
    manifests: [{
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: digestOf(manifest),
      size: manifest.length,
      futureField: "ignored",
      platform: { os: "linux", architecture: "amd64", "x-cpu": "fast" },
    }],
  };
  const byDigest = new Map([[digestOf(manifest), manifest]]);
  const { transport } = openerOver((request) => {
    const last = new URL(request.url).pathname.split("/").pop()!;
    const body = byDigest.get(last);
    return body
      ? new Response(body, {
        headers: {
          "content-type": OCI_MANIFEST_MEDIA_TYPE + "; charset=utf-8",
        },
      })
      : new Response(json(index), {
        headers: { "content-type": OCI_INDEX_MEDIA_TYPE },
      });
  });
  const top = await fetchManifest(REF, { transport });
  assert.deepEqual(
    (top.document as unknown as Record<string, unknown>)["x-vendor"],
    { anything: [1, 2, 3] },
  );
  const { manifest: resolved } = await resolveImage(
    remoteStore(REF, { transport }),
    "v1",
    { platform: { os: "linux", architecture: "amd64" } },
  );
  assert.equal(resolved.descriptor.mediaType, OCI_MANIFEST_MEDIA_TYPE);
  assert.equal(
    resolved.document.layers[0].mediaType,
    "application/vnd.example.future+zstd",
  );
});

Deno.test("bad input: manifests over 4 MiB are refused, declared or endless, without reading them whole", async () => {
  const declared = openerOver(() =>
    new Response(endlessBody(new Uint8Array(MiB), 100 * MiB).body, {
      headers: {
        "content-type": OCI_MANIFEST_MEDIA_TYPE,
        "content-length": String(100 * MiB),
      },
    })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: declared.transport }),
    (error) =>
      assertTyped(
        error,
        ManifestError,
        /the manifest is larger than 4194304 bytes/,
      ),
  );
  const endless = endlessBody(new TextEncoder().encode(" ".repeat(64 * 1024)));
  const streamed = openerOver(() =>
    new Response(endless.body, {
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
    })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: streamed.transport }),
    (error) =>
      assertTyped(
        error,
        ManifestError,
        /the manifest is larger than 4194304 bytes/,
      ),
  );
  assert.ok(endless.pulled() <= 5 * MiB, `read ${endless.pulled()} bytes`);
});

Deno.test("bad input: a manifest over 4 MiB in an OCI layout gives the same ManifestError", async () => {
  await withLayoutDir(async (dir) => {
    const big = encoder.encode(
      json({ ...GOOD_MANIFEST, padding: " ".repeat(4 * MiB) }),
    );
    const { fetch } = await layoutServing(dir, big, OCI_MANIFEST_MEDIA_TYPE);
    await assert.rejects(
      fetch(),
      (error) =>
        assertTyped(
          error,
          ManifestError,
          /^Cannot read manifest .*: the manifest is larger than 4194304 bytes$/,
        ),
    );
  });
});
