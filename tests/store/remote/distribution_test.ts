// Registry operations against the real CNCF distribution registry on 127.0.0.1.
import assert from "node:assert/strict";
import { digestOf } from "../../../src/oci/digest.ts";
import {
  parseReference,
  withDigest,
  withTag,
} from "../../../src/oci/reference.ts";
import { blobExists, fetchBlob } from "../../../src/store/remote/blobs.ts";
import {
  encodeManifest,
  fetchManifest,
} from "../../../src/store/remote/manifests.ts";
import { listTags } from "../../../src/store/remote/tags.ts";
import { openLayout } from "../../../src/store/layout_store.ts";
import { memoryStore } from "../../../src/store/memory_store.ts";
import { remoteStore } from "../../../src/store/remote_store.ts";
import { copyBlobs } from "../../../src/image/copy.ts";
import {
  PlatformNotFoundError,
  readConfig,
  resolveImage,
} from "../../../src/image/resolve.ts";
import {
  bytesSource,
  fileSource,
} from "../../../src/transport/request_body.ts";
import { parsePlatform } from "../../../src/oci/platform.ts";
import { startDistribution } from "../../../peers/distribution.ts";
import {
  makeImage,
  pseudoRandomBytes,
  pushTestImage,
  pushTestIndex,
} from "../../support/images.ts";
import { requirePeer } from "../../../peers/available.ts";
import { registryTest, SOCKET_BACKENDS } from "../../support/registries.ts";
import { recordingOpener } from "../../support/recording.ts";

const needsRegistry = requirePeer("docker-registry");

/** The log without hosts: `METHOD /path?query STATUS`. */
function paths(log: string[]): string[] {
  return log.map((line) => line.replace(/^(\S+) [^/\s]+\//, "$1 /"));
}

/** A blob's descriptor. */
function blob(bytes: Uint8Array) {
  return {
    mediaType: "application/octet-stream",
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
}

/** A memory store holding the bytes, to copy from. */
async function holding(bytes: Uint8Array) {
  const store = memoryStore();
  await store.push(blob(bytes), bytesSource(bytes));
  return store;
}

for (const size of [0, 1, 5 << 20]) {
  Deno.test({
    name:
      `remoteStore().push() and fetchBlob() round-trip ${size} bytes through distribution`,
    ...needsRegistry,
    async fn() {
      await using registry = await startDistribution();
      const { transport, log } = recordingOpener();
      const ref = parseReference(`${registry.host}/blobs/test`);
      const bytes = pseudoRandomBytes(size, size + 7);
      const digest = digestOf(bytes);
      assert.equal(await blobExists(ref, digest, { transport }), false);
      const lines: string[] = [];
      const store = remoteStore(ref, { transport, log: (l) => lines.push(l) });
      const source = await holding(bytes);
      assert.deepEqual(
        await copyBlobs(source, store, [blob(bytes)]),
        { copied: 1, mounted: 0, skipped: 0 },
      );
      assert.match(
        lines[0],
        new RegExp(
          `^Uploaded ${digest} \\([0-9.]+ (B|KiB|MiB) in \\d+\\.\\d\\ds, [0-9.]+ (B|KiB|MiB)/s\\)$`,
        ),
      );
      assert.equal(await blobExists(ref, digest, { transport }), true);
      assert.deepEqual(
        await copyBlobs(source, store, [blob(bytes)]),
        { copied: 0, mounted: 0, skipped: 1 },
        "second copy skipped",
      );
      // The store's push uploads whatever the registry has (the copy asks first).
      await store.push(blob(bytes), bytesSource(bytes));
      const back = new Uint8Array(
        await new Response(await fetchBlob(ref, digest, { transport, size }))
          .arrayBuffer(),
      );
      assert.equal(digestOf(back), digest);
      assert.equal(back.byteLength, size);
      // HEAD, POST, PUT (first upload); HEAD (skip); POST, PUT (forced); then the GET.
      assert.deepEqual(log.map((l) => l.split(" ")[0]), [
        "HEAD",
        "HEAD",
        "POST",
        "PUT",
        "HEAD",
        "HEAD",
        "POST",
        "PUT",
        "GET",
      ]);
    },
  });
}

registryTest(
  "remoteStore().push() streams a 300 MiB file with flat memory, and fetchBlob() verifies it",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/big/blob`);
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/blob`;
      const chunk = pseudoRandomBytes(1 << 20, 3);
      const file = await Deno.open(path, { write: true, create: true });
      const hash = (await import("node:crypto")).createHash("sha256");
      for (let i = 0; i < 300; i++) {
        chunk[0] = i;
        await file.write(chunk);
        hash.update(chunk);
      }
      file.close();
      const digest = `sha256:${hash.digest("hex")}`;
      // Warm up: the first request loads node:http's internals, a one-time cost.
      let progressCalls = 0;
      const store = remoteStore(ref, {
        transport,
        onProgress: () => progressCalls++,
      });
      await store.push(blob(new Uint8Array(1)), bytesSource(new Uint8Array(1)));
      progressCalls = 0;
      const peakDuring = async (work: () => Promise<void>) => {
        const before = Deno.memoryUsage().rss;
        let peak = before;
        const sampler = setInterval(
          () => peak = Math.max(peak, Deno.memoryUsage().rss),
          10,
        );
        try {
          await work();
        } finally {
          clearInterval(sampler);
        }
        return (peak - before) / 1024 / 1024;
      };
      const upload = await peakDuring(async () => {
        await store.push(
          { mediaType: "application/octet-stream", digest, size: 300 << 20 },
          await fileSource(path),
        );
      });
      const download = await peakDuring(async () => {
        await (await fetchBlob(ref, digest, { transport, size: 300 << 20 }))
          .pipeTo(new WritableStream());
      });
      assert.ok(progressCalls > 10);
      assert.ok(
        upload < 64,
        `peak RSS grew by ${upload.toFixed(1)} MiB during the upload`,
      );
      assert.ok(
        download < 150,
        `peak RSS grew by ${download.toFixed(1)} MiB during the download`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  // An in-memory registry in the same process holds the blob itself.
  { backends: ["distribution", "embedded-layout"] },
);

registryTest(
  "remoteStore() single POST: one request where supported, else 202 and the PUT",
  async (start, backend) => {
    await using registry = await start();
    const { transport, log } = recordingOpener();
    const ref = parseReference(`${registry.host}/single/post`);
    const bytes = pseudoRandomBytes(1000, 9);
    const digest = digestOf(bytes);
    await copyBlobs(
      await holding(bytes),
      remoteStore(ref, { transport, smallBlobSize: 4096 }),
      [blob(bytes)],
    );
    const shapes = paths(log).map((l) =>
      l.replace(/sha256(:|%3A)[0-9a-f]+/, "D").replace(
        /uploads\/[0-9a-f-]{36}/,
        "uploads/UUID",
      )
        .replace(/_state=[^&]+/, "_state=STATE")
    );
    // Distribution 2.8 ignores the body of a single POST; the embedded registry takes it.
    assert.deepEqual(
      shapes,
      backend === "distribution"
        ? [
          `HEAD /v2/single/post/blobs/D 404`,
          `POST /v2/single/post/blobs/uploads/?digest=D 202`,
          `PUT /v2/single/post/blobs/uploads/UUID?_state=STATE&digest=D 201`,
        ]
        : [
          `HEAD /v2/single/post/blobs/D 404`,
          `POST /v2/single/post/blobs/uploads/?digest=D 201`,
        ],
    );
    assert.ok(await blobExists(ref, digest, { transport }));
  },
);

registryTest(
  "copyBlobs() mounts a blob from another repository of the registry without sending bytes",
  async (start) => {
    await using registry = await start();
    const { transport, log } = recordingOpener();
    const source = parseReference(`${registry.host}/team/base`);
    const target = parseReference(`${registry.host}/team/app`);
    const bytes = pseudoRandomBytes(2 << 20, 11);
    const digest = digestOf(bytes);
    await remoteStore(source, { transport }).push(
      blob(bytes),
      bytesSource(bytes),
    );
    log.length = 0;
    assert.deepEqual(
      await copyBlobs(
        remoteStore(source, { transport }),
        remoteStore(target, { transport }),
        [blob(bytes)],
      ),
      { copied: 1, mounted: 1, skipped: 0 },
    );
    assert.deepEqual(
      paths(log).map((l) => l.replace(/sha256:[0-9a-f]+/, "D")),
      [
        "HEAD /v2/team/app/blobs/D 404",
        "POST /v2/team/app/blobs/uploads/?mount=D&from=team%2Fbase 201",
      ],
    );
    assert.ok(await blobExists(target, digest, { transport }));
  },
);

registryTest(
  "remoteStore().push() of a manifest by tag and by digest; fetchManifest() verifies by digest",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/app:v1`);
    const image = makeImage({ os: "linux", architecture: "amd64" }, [
      1000,
      2000,
    ]);
    const byTag = await pushTestImage(ref, image, { transport });
    const fetched = await fetchManifest(ref, { transport });
    assert.deepEqual(fetched.descriptor, byTag);
    assert.deepEqual(fetched.document, image.manifest);
    const pinned = await fetchManifest(
      withDigest(withTag(ref, "other"), byTag.digest),
      { transport },
    );
    assert.equal(pinned.descriptor.digest, byTag.digest);
    const store = remoteStore(ref, { transport });
    const encoded = encodeManifest({
      ...image.manifest,
      annotations: { a: "b" },
    });
    const byDigest = {
      mediaType: image.manifest.mediaType!,
      digest: encoded.digest,
      size: encoded.size,
    };
    await store.push(byDigest, bytesSource(encoded.bytes));
    assert.deepEqual(
      await listTags(ref, { transport }),
      ["v1"],
      "pushing by digest adds no tag",
    );
    assert.equal(
      (await fetchManifest(withDigest(ref, byDigest.digest), { transport }))
        .descriptor.digest,
      byDigest.digest,
    );
    const { manifest } = await resolveImage(store, "v1");
    const config = await readConfig(store, manifest.document.config);
    assert.deepEqual(
      config.rootfs.diff_ids,
      image.layers.map((l) => l.descriptor.digest),
    );
  },
);

registryTest(
  "resolveImage() resolves a four-platform index to each platform",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/multi:latest`);
    const platforms = [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
      { os: "linux", architecture: "arm", variant: "v7" },
      { os: "windows", architecture: "amd64", "os.version": "10.0.20348.2113" },
    ];
    const images = platforms.map((p, i) => makeImage(p, [500 + i], i + 1));
    const { manifests } = await pushTestIndex(ref, images, { transport });
    const wanted: [string, number][] = [
      ["linux/amd64", 0],
      ["linux/x86_64", 0],
      ["linux/arm64", 1],
      ["linux/aarch64", 1],
      ["linux/arm64/v8", 1],
      ["linux/arm", 2],
      ["linux/arm/v7", 2],
      ["windows/amd64", 3],
      ["windows/amd64:10.0.20348.2113", 3],
    ];
    const store = remoteStore(ref, { transport });
    for (const [text, i] of wanted) {
      const resolved = await resolveImage(store, "latest", {
        platform: parsePlatform(text),
      });
      assert.equal(
        resolved.manifest.descriptor.digest,
        manifests[i].digest,
        text,
      );
      assert.ok(resolved.index !== undefined);
    }
    for (
      const text of ["linux/s390x", "linux/arm/v6", "windows/amd64:10.0.17763"]
    ) {
      await assert.rejects(
        resolveImage(store, "latest", { platform: parsePlatform(text) }),
        (error: unknown) => {
          assert.ok(error instanceof PlatformNotFoundError);
          assert.match(
            error.message,
            /available: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7, windows\/amd64:10\.0\.20348\.2113/,
          );
          return true;
        },
      );
    }
    await assert.rejects(
      resolveImage(store, "latest", { maxDepth: 0 }),
      /maximum depth 0/,
    );
  },
);

registryTest(
  "pull's staging of the config: copied into the stage, then reused without a request",
  async (start) => {
    await using registry = await start();
    const { transport, log } = recordingOpener();
    const ref = parseReference(`${registry.host}/staged:v1`);
    const image = makeImage({ os: "linux", architecture: "amd64" }, [100]);
    await pushTestImage(ref, image, { transport });
    const dir = await Deno.makeTempDir();
    try {
      const stage = await openLayout(dir);
      log.length = 0;
      const staged = async () => {
        const store = remoteStore(ref, { transport });
        const { manifest } = await resolveImage(store, "v1", {
          platform: parsePlatform("linux/amd64"),
        });
        await copyBlobs(store, stage, [manifest.document.config]);
        return { config: await readConfig(stage, manifest.document.config) };
      };
      await staged();
      assert.ok(await stage.hasBlob(image.config.descriptor.digest));
      const first = log.length;
      const { config } = await staged();
      assert.equal(config.architecture, "amd64");
      assert.equal(log.length - first, 1, "only the manifest is fetched again");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

registryTest(
  "listTags() with a page size returns every tag (distribution 2.8 ignores n)",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/tagged`);
    const image = makeImage({ os: "linux", architecture: "amd64" }, [10]);
    const tags = ["a", "b", "c", "d", "e"];
    for (const tag of tags) {
      await pushTestImage(withTag(ref, tag), image, { transport });
    }
    assert.deepEqual(
      (await listTags(ref, { transport, pageSize: 2 })).sort(),
      tags,
    );
  },
);

registryTest(
  "registry errors carry the OCI error code and message",
  async (start) => {
    await using registry = await start();
    const { transport } = recordingOpener();
    const ref = parseReference(`${registry.host}/missing:v1`);
    await assert.rejects(
      fetchManifest(ref, { transport }),
      /GET http:\/\/127\.0\.0\.1:\d+\/v2\/missing\/manifests\/v1: 404 Not Found: expected 200: (MANIFEST_UNKNOWN|NAME_UNKNOWN)/,
    );
    await assert.rejects(
      remoteStore(ref, { transport }).push(
        { ...blob(new Uint8Array([1, 2, 3])), digest: digestOf("other") },
        bytesSource(new Uint8Array([1, 2, 3])),
      ),
      /PUT .*: 400 Bad Request: expected 201: DIGEST_INVALID/,
    );
  },
  // The messages name the socket's URL and status line ("404 Not Found"); an in-process
  // handler's responses have no status text.
  { backends: SOCKET_BACKENDS },
);
