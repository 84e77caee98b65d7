// Bad input from the outside world (issue 7, item 3): indexes that point back at themselves, nest
// too deep, lack the platform asked for or hold entries that are not usable.
import assert from "node:assert/strict";
import { DigestMismatchError, digestOf } from "../../src/oci/digest.ts";
import {
  PlatformNotFoundError,
  readConfig,
  resolveImage,
  type ResolveOptions,
  selectPlatform,
} from "../../src/image/resolve.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import {
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import type { ImageIndex } from "../../src/oci/manifest.ts";
import { IndexDepthError } from "../../src/oci/parse_manifest.ts";
import { layoutStore, openLayout } from "../../src/store/layout_store.ts";
import { copyImage } from "../../src/image/copy.ts";
import {
  assertTyped,
  CONFIG,
  encoder,
  GOOD_MANIFEST,
  json,
  MiB,
  openerOver,
  REF,
  serving,
  withLayoutDir,
} from "../support/bad_input.ts";

/** Resolves REF's tag on a registry behind `transport`. */
function resolveOn(transport: Transport, options: ResolveOptions) {
  return resolveImage(remoteStore(REF, { transport }), REF.tag!, options);
}

/** An index listing `entries`, as bytes. */
function indexOf(...entries: object[]): string {
  return json({
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: entries,
  });
}

Deno.test("bad input: an index whose child points back to the index stops with a DigestMismatchError", async () => {
  // The child's digest names some other content; the registry answers it with the index itself,
  // as it does for the tag. A true digest cycle cannot be built: an index cannot hold its own hash.
  const child = digestOf("the real child");
  const index = indexOf({
    mediaType: OCI_INDEX_MEDIA_TYPE,
    digest: child,
    size: 14,
    platform: { os: "linux", architecture: "amd64" },
  });
  const { transport, requests } = openerOver(() =>
    new Response(index, { headers: { "content-type": OCI_INDEX_MEDIA_TYPE } })
  );
  await assert.rejects(
    // One read of each: a mismatch is read again otherwise (bytes damaged on the way).
    resolveOn(transport, {
      platform: { os: "linux", architecture: "amd64" },
      attempts: 1,
    }),
    (error: unknown) => {
      assertTyped(error, DigestMismatchError, new RegExp(child), /manifests/);
      assert.equal((error as DigestMismatchError).expected, child);
      assert.equal((error as DigestMismatchError).actual, digestOf(index));
      return true;
    },
  );
  assert.equal(requests.length, 2);
});

/** Ten levels of correctly hashed indexes over one manifest, by digest, and the top one. */
function tenNestedIndexes() {
  const byDigest = new Map<string, [string, string]>();
  let top = json(GOOD_MANIFEST);
  let type = OCI_MANIFEST_MEDIA_TYPE;
  byDigest.set(digestOf(top), [top, type]);
  for (let level = 0; level < 10; level++) {
    top = indexOf({
      mediaType: type,
      digest: digestOf(top),
      size: top.length,
      platform: { os: "linux", architecture: "amd64" },
    });
    type = OCI_INDEX_MEDIA_TYPE;
    byDigest.set(digestOf(top), [top, type]);
  }
  return { byDigest, top, type };
}

Deno.test("bad input: indexes nested beyond maxDepth stop with an IndexDepthError naming the depth", async () => {
  // Ten levels of correctly hashed indexes; the resolver must stop at maxDepth.
  const { byDigest, top, type } = tenNestedIndexes();
  const { transport, requests } = openerOver((request) => {
    const last = new URL(request.url).pathname.split("/").pop()!;
    const [body, contentType] = byDigest.get(last) ?? [top, type];
    return new Response(body, { headers: { "content-type": contentType } });
  });
  for (const maxDepth of [0, 2, 5]) {
    requests.length = 0;
    await assert.rejects(
      resolveOn(transport, {
        maxDepth,
        platform: { os: "linux", architecture: "amd64" },
      }),
      (error) =>
        assertTyped(
          error,
          IndexDepthError,
          new RegExp(
            `maximum depth ${maxDepth} of nested indexes reached while resolving 127\\.0\\.0\\.1:5000/app:v1`,
          ),
        ),
    );
    assert.equal(requests.length, maxDepth + 1);
  }
});

Deno.test("bad input: indexes nested beyond maxDepth in an OCI layout stop with the same IndexDepthError", async () => {
  // Issue 13: this was a RegistryError with status 200 from a registry, a RangeError from a layout.
  const { byDigest, top, type } = tenNestedIndexes();
  await withLayoutDir(async (dir) => {
    const layout = await openLayout(dir);
    for (const [digest, [body]] of byDigest) {
      const bytes = encoder.encode(body);
      await layout.writeBlob(digest, new Response(bytes).body!, {
        size: bytes.byteLength,
      });
    }
    await layout.tag(
      { mediaType: type, digest: digestOf(top), size: top.length },
      "v1",
    );
    const store = await layoutStore(layout);
    const target = await layoutStore(`${dir}/copy`);
    const platform = { os: "linux", architecture: "amd64" };
    for (const maxDepth of [0, 2, 5]) {
      await assert.rejects(
        resolveImage(store, "v1", { platform, maxDepth }),
        (error) => {
          assertTyped(
            error,
            IndexDepthError,
            new RegExp(
              `maximum depth ${maxDepth} of nested indexes reached while resolving oci:.*:v1`,
            ),
          );
          assert.equal((error as IndexDepthError).maxDepth, maxDepth);
          return true;
        },
      );
      for (const copyPlatform of [platform, "all" as const]) {
        await assert.rejects(
          copyImage(store, target, "v1", { platform: copyPlatform, maxDepth }),
          (error) =>
            assertTyped(
              error,
              IndexDepthError,
              new RegExp(`maximum depth ${maxDepth} of nested indexes`),
            ),
        );
      }
    }
  });
});

Deno.test("bad input: an index without the platform gives a PlatformNotFoundError listing what it has", async () => {
  const entry = (platform: object) => ({
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest: digestOf(json(platform)),
    size: 1,
    platform,
  });
  const index = indexOf(
    entry({ os: "linux", architecture: "amd64" }),
    entry({ os: "linux", architecture: "arm64", variant: "v8" }),
    {
      mediaType: "application/vnd.in-toto+json",
      digest: digestOf("attestation"),
      size: 1,
    },
  );
  const { transport } = serving(index, OCI_INDEX_MEDIA_TYPE);
  await assert.rejects(
    resolveOn(transport, { platform: { os: "linux", architecture: "s390x" } }),
    (error: unknown) => {
      assertTyped(
        error,
        PlatformNotFoundError,
        /Cannot find platform linux\/s390x in 127\.0\.0\.1:5000\/app:v1: available: linux\/amd64, linux\/arm64\/v8$/,
      );
      assert.equal((error as PlatformNotFoundError).available.length, 2);
      return true;
    },
  );
  const empty = serving(indexOf(), OCI_INDEX_MEDIA_TYPE);
  await assert.rejects(
    resolveOn(empty.transport, {
      platform: { os: "linux", architecture: "amd64" },
    }),
    (error) => assertTyped(error, PlatformNotFoundError, /available: none$/),
  );
});

Deno.test("bad input: selectPlatform() skips index entries that are not usable instead of crashing", () => {
  // Indexes from an OCI layout on disk do not go through fetchManifest's checks.
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: [null, 5, "x", { platform: "linux/amd64" }, {
      platform: { os: 1 },
    }, { platform: { os: "linux", architecture: "arm" } }],
  } as unknown as ImageIndex;
  assert.throws(
    () => selectPlatform(index, { os: "linux", architecture: "amd64" }, "app"),
    (error) =>
      assertTyped(error, PlatformNotFoundError, /available: linux\/arm$/),
  );
  assert.throws(
    () =>
      selectPlatform({ manifests: "no" } as unknown as ImageIndex, {
        os: "linux",
        architecture: "amd64",
      }, "app"),
    (error) => assertTyped(error, PlatformNotFoundError, /available: none/),
  );
});

Deno.test("bad input: a config blob that is not JSON or too large is refused, naming the blob and the store", async () => {
  const garbage = "not { json";
  const { transport, requests } = openerOver(() => new Response(garbage));
  const store = remoteStore(REF, { transport });
  const descriptor = {
    mediaType: CONFIG.mediaType,
    digest: digestOf(garbage),
    size: garbage.length,
  };
  await assert.rejects(
    readConfig(store, descriptor),
    (error) =>
      assertTyped(
        error,
        SyntaxError,
        new RegExp(
          `Cannot read config ${descriptor.digest} of 127\\.0\\.0\\.1:5000/app: it is not valid JSON`,
        ),
      ),
  );
  requests.length = 0;
  await assert.rejects(
    readConfig(store, { ...descriptor, size: 5 * MiB }),
    (error) => assertTyped(error, RangeError, /5242880 bytes is too large/),
  );
  assert.equal(requests.length, 0, "refused before any request");
});
