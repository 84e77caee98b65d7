// Images on the real distribution registry: push on a base that skopeo pushed, pull back with
// digest checks, and read by skopeo and umoci.
import assert from "node:assert/strict";
import { parseReference, withTag } from "../../src/oci/reference.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { createLayer } from "../../src/layer/create_layer.ts";
import {
  openLayout,
  REF_NAME_ANNOTATION,
} from "../../src/store/layout_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { pushImage, pushIndex } from "../../src/image/push.ts";
import { pullImage } from "../../src/image/pull.ts";
import {
  encodeManifest,
  fetchManifest,
} from "../../src/store/remote/manifests.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { readConfig, resolveImage } from "../../src/image/resolve.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import type { Descriptor, ImageManifest } from "../../src/oci/manifest.ts";
import {
  bytesSource,
  fileSource,
  type Transport,
} from "../../src/transport/request_body.ts";
import { DigestMismatchError, DigestStream } from "../../src/oci/digest.ts";
import { createRegistry } from "../../src/server/handler.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { registryTest } from "../support/registries.ts";
import { registryTransport } from "../support/in_process.ts";

const transport = createOpener({
  transport: registryTransport,
  credentials: () => Promise.resolve(undefined),
});

async function run(command: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    out.code,
    0,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
  return new TextDecoder().decode(out.stdout);
}

async function hashFile(path: string): Promise<string> {
  const hasher = new DigestStream();
  await (await Deno.open(path)).readable.pipeThrough(hasher).pipeTo(
    new WritableStream(),
  );
  return (await hasher.result).digest;
}

async function files(
  root: string,
  relative = "",
): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for await (const entry of Deno.readDir(`${root}/${relative}`)) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    const info = await Deno.lstat(`${root}/${path}`);
    if (info.isDirectory) Object.assign(found, await files(root, path));
    else if (info.isSymlink) {
      found[path] = `-> ${await Deno.readLink(`${root}/${path}`)}`;
    } else {found[path] = `${(info.mode! & 0o777).toString(8)} ${await Deno
        .readTextFile(`${root}/${path}`)}`;}
  }
  return found;
}

/** An OCI layout holding a one-layer base image, built with our own layer code. */
async function baseLayout(dir: string, tree: string): Promise<void> {
  await Deno.mkdir(`${tree}/etc`, { recursive: true });
  await Deno.writeTextFile(`${tree}/etc/os-release`, "NAME=base\n");
  await Deno.writeTextFile(`${tree}/etc/removed-later`, "x\n");
  const layout = await openLayout(dir);
  const layer = await createLayer(tree, layout);
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/bin"] },
    rootfs: { type: "layers", diff_ids: [layer.uncompressedDigest] },
    history: [{ created_by: "base" }],
  }));
  const store = await layoutStore(layout);
  const configDescriptor = {
    mediaType: OCI_CONFIG_MEDIA_TYPE,
    digest: digestOf(config),
    size: config.byteLength,
  };
  await store.push(configDescriptor, bytesSource(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: configDescriptor,
    layers: [{
      mediaType: OCI_LAYER_GZIP_MEDIA_TYPE,
      digest: layer.compressedDigest,
      size: layer.size,
    }],
  };
  const { bytes, digest, size } = encodeManifest(manifest);
  await store.push(
    {
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest,
      size,
    },
    bytesSource(bytes),
    { tag: "1.0" },
  );
}

registryTest(
  "pushImage() on a base skopeo pushed; skopeo and umoci unpack it with the right files and diff_ids",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-image-" });
    try {
      await baseLayout(`${work}/base-layout`, `${work}/base-tree`);
      await run(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        `oci:${work}/base-layout:1.0`,
        `docker://${registry.host}/base:1.0`,
      );

      await Deno.mkdir(`${work}/app/opt/app/bin`, { recursive: true });
      await Deno.writeTextFile(
        `${work}/app/opt/app/bin/run`,
        "#!/bin/sh\necho app\n",
      );
      await Deno.chmod(`${work}/app/opt/app/bin/run`, 0o755);
      await Deno.mkdir(`${work}/app/etc`);
      await Deno.writeTextFile(`${work}/app/etc/.wh.removed-later`, "");
      const stage = await openLayout(`${work}/stage`);
      const layer = await createLayer(`${work}/app`, stage);
      const target = parseReference(`${registry.host}/team/app:v1`);
      const base = parseReference(`${registry.host}/base:1.0`);
      const pushed = await pushImage(target, {
        layers: [layer],
        base,
        transport,
        config: { Entrypoint: ["/opt/app/bin/run"] },
        annotations: {
          "org.opencontainers.image.source": "https://example.com/app",
        },
        created: "2026-01-01T00:00:00Z",
      });
      const targetStore = remoteStore(target, { transport });
      const { manifest } = await resolveImage(targetStore, "v1", {
        platform: parsePlatform("linux/amd64"),
      });
      const config = await readConfig(targetStore, manifest.document.config);
      const baseManifest = await fetchManifest(base, { transport });
      assert.equal(manifest.descriptor.digest, pushed.digest);
      assert.deepEqual(manifest.document.layers.map((l) => l.digest), [
        (baseManifest.document as ImageManifest).layers[0].digest,
        layer.compressedDigest,
      ]);
      assert.equal(config.rootfs.diff_ids.length, 2);
      assert.equal(config.rootfs.diff_ids[1], layer.uncompressedDigest);
      assert.deepEqual(config.config, {
        Env: ["PATH=/usr/bin"],
        Entrypoint: ["/opt/app/bin/run"],
      });
      assert.equal(config.history?.length, 2);
      const annotations = manifest.document.annotations!;
      assert.equal(
        annotations["org.opencontainers.image.base.name"],
        `${registry.host}/base:1.0`,
      );
      assert.equal(
        annotations["org.opencontainers.image.base.digest"],
        baseManifest.descriptor.digest,
      );
      assert.equal(
        annotations["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z",
      );
      assert.equal(
        annotations["org.opencontainers.image.source"],
        "https://example.com/app",
      );

      await run(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        `docker://${registry.host}/team/app:v1`,
        `oci:${work}/out:v1`,
      );
      const outIndex = JSON.parse(
        await Deno.readTextFile(`${work}/out/index.json`),
      );
      assert.equal(outIndex.manifests[0].digest, pushed.digest);
      await run(
        "umoci",
        "unpack",
        "--rootless",
        "--image",
        `${work}/out:v1`,
        `${work}/bundle`,
      );
      const unpacked = await files(`${work}/bundle/rootfs`);
      assert.equal(unpacked["etc/os-release"], "644 NAME=base\n");
      assert.equal(unpacked["opt/app/bin/run"], "755 #!/bin/sh\necho app\n");
      assert.equal(
        unpacked["etc/removed-later"],
        undefined,
        "umoci applied our whiteout",
      );

      const pulled = `${work}/pulled`;
      await pullImage(target, pulled, {
        transport,
        cache: `${work}/cache`,
        platform: parsePlatform("linux/amd64"),
      });
      assert.deepEqual(await files(pulled), unpacked);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
  { peers: ["skopeo", "umoci"] },
);

registryTest(
  "pushIndex() pushes two platforms from scratch and pullImage() gets each",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-image-" });
    try {
      const stage = await openLayout(`${work}/stage`);
      const layers = [];
      for (const arch of ["amd64", "arm64"]) {
        await Deno.mkdir(`${work}/${arch}`, { recursive: true });
        await Deno.writeTextFile(`${work}/${arch}/arch.txt`, arch);
        layers.push(await createLayer(`${work}/${arch}`, stage));
      }
      const ref = parseReference(`${registry.host}/multi:v1`);
      await pushIndex(ref, [
        { layers: [layers[0]], platform: parsePlatform("linux/amd64") },
        { layers: [layers[1]], platform: parsePlatform("linux/arm64") },
      ], { transport });
      for (const [i, arch] of ["amd64", "arm64"].entries()) {
        const out = `${work}/out-${arch}`;
        const result = await pullImage(ref, out, {
          transport,
          cache: stage,
          platform: parsePlatform(`linux/${arch}`),
        });
        assert.equal(await Deno.readTextFile(`${out}/arch.txt`), arch);
        assert.equal(result.config.architecture, arch);
        assert.equal(
          result.manifest.layers[0].digest,
          layers[i].compressedDigest,
        );
      }
      assert.equal(
        (await stage.tagged("v1"))?.mediaType,
        OCI_MANIFEST_MEDIA_TYPE,
        "the stage names what was pulled",
      );
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
);

registryTest(
  "a tree with long names, links, empty dirs and a 1 GiB sparse-ish file round-trips through push and pull",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-image-" });
    try {
      const tree = `${work}/tree`;
      const long = `${tree}/${"l".repeat(150)}/${"o".repeat(150)}`;
      await Deno.mkdir(long, { recursive: true });
      await Deno.mkdir(`${tree}/empty`);
      await Deno.writeTextFile(`${long}/${"n".repeat(200)}`, "deep\n");
      await Deno.symlink("big.bin", `${tree}/big-link`);
      await Deno.writeTextFile(`${tree}/data`, "data\n");
      await Deno.chmod(`${tree}/data`, 0o600);
      await Deno.link(`${tree}/data`, `${tree}/data-hard`);
      // 1 GiB, mostly zeros with a marker every 64 MiB.
      const big = await Deno.open(`${tree}/big.bin`, {
        write: true,
        create: true,
      });
      await big.truncate(1 << 30);
      for (let i = 0; i < 16; i++) {
        await big.seek(i * (64 << 20), Deno.SeekMode.Start);
        await big.write(new TextEncoder().encode(`marker ${i}`));
      }
      big.close();
      const bigDigest = await hashFile(`${tree}/big.bin`);

      const stage = await openLayout(`${work}/stage`);
      const layer = await createLayer(tree, stage);
      const ref = parseReference(`${registry.host}/big:v1`);
      await pushImage(ref, {
        layers: [layer],
        transport,
        platform: parsePlatform("linux/amd64"),
      });
      const out = `${work}/out`;
      await pullImage(withTag(ref, "v1"), out, {
        transport,
        cache: `${work}/cache`,
        platform: parsePlatform("linux/amd64"),
      });
      assert.equal((await Deno.stat(`${out}/big.bin`)).size, 1 << 30);
      assert.equal(await hashFile(`${out}/big.bin`), bigDigest);
      assert.equal(await Deno.readLink(`${out}/big-link`), "big.bin");
      assert.equal(
        await Deno.readTextFile(
          `${long.replace(tree, out)}/${"n".repeat(200)}`,
        ),
        "deep\n",
      );
      assert.ok((await Deno.stat(`${out}/empty`)).isDirectory);
      assert.equal((await Deno.stat(`${out}/data`)).mode! & 0o777, 0o600);
      assert.equal(
        (await Deno.stat(`${out}/data-hard`)).ino,
        (await Deno.stat(`${out}/data`)).ino,
      );
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
);

// --- A failed pull leaves the stage without the image's name, and a rerun fetches only what
// is missing. The registry is in-process (createRegistry as the transport), so a layer can be
// damaged exactly: one byte flipped, cut short, or the connection dropped half way.

/** An image built on disk and pushed to an in-process registry. */
interface StagedImage {
  manifest: string;
  layers: string[];
  config: string;
}

/** Pushes an image of `count` one-file layers; `badDiffId` gives that layer a wrong diff_id. */
async function pushTestImage(
  work: string,
  registry: Transport,
  ref: ReturnType<typeof parseReference>,
  options: { count?: number; seed: string; badDiffId?: number },
): Promise<StagedImage> {
  const build = await openLayout(`${work}/build-${options.seed}`);
  const layers = [];
  for (let i = 0; i < (options.count ?? 3); i++) {
    const tree = `${work}/tree-${options.seed}-${i}`;
    await Deno.mkdir(tree, { recursive: true });
    await Deno.writeTextFile(
      `${tree}/file${i}`,
      `${options.seed} layer ${i}\n`,
    );
    layers.push(await createLayer(tree, build));
  }
  const diffIds = layers.map((layer, i) => {
    const id = layer.uncompressedDigest;
    if (i !== options.badDiffId) return id;
    // Differs from the real diff_id only in its last hex character.
    return id.slice(0, -1) + (id.endsWith("0") ? "1" : "0");
  });
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
  const store = remoteStore(ref, { transport: registry });
  await store.push({
    mediaType: OCI_CONFIG_MEDIA_TYPE,
    digest: digestOf(config),
    size: config.byteLength,
  }, bytesSource(config));
  for (const layer of layers) {
    await store.push({
      mediaType: OCI_LAYER_GZIP_MEDIA_TYPE,
      digest: layer.compressedDigest,
      size: layer.size,
    }, await fileSource(layer.path));
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: OCI_CONFIG_MEDIA_TYPE,
      digest: digestOf(config),
      size: config.byteLength,
    },
    layers: layers.map((layer) => ({
      mediaType: OCI_LAYER_GZIP_MEDIA_TYPE,
      digest: layer.compressedDigest,
      size: layer.size,
    })),
  };
  const encoded = encodeManifest(manifest);
  const descriptor = {
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest: encoded.digest,
    size: encoded.size,
  };
  await store.push(descriptor, bytesSource(encoded.bytes), { tag: ref.tag });
  return {
    manifest: descriptor.digest,
    layers: layers.map((layer) => layer.compressedDigest),
    config: digestOf(config),
  };
}

type Damage = "flip" | "truncate" | "reset";

/** Passes requests to the registry, damaging the body of one blob's GETs as told. */
function damaging(
  registry: Transport,
  victim: string,
  damage: Damage,
  blobGets: string[],
): Transport {
  return async (request) => {
    const response = await registry(request);
    const path = new URL(request.url).pathname;
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path)?.[1];
    if (request.method === "GET" && blob !== undefined) blobGets.push(blob);
    if (request.method !== "GET" || blob !== victim) return response;
    const bytes = new Uint8Array(await response.arrayBuffer());
    const half = bytes.subarray(0, bytes.byteLength >> 1);
    const headers = { "content-length": String(bytes.byteLength) };
    if (damage === "flip") {
      bytes[bytes.byteLength >> 1] ^= 0x40;
      return new Response(bytes, { headers });
    }
    if (damage === "truncate") return new Response(half, { headers });
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (controller.desiredSize === null) return;
          controller.enqueue(half.slice());
          controller.error(new TypeError("connection reset by peer"));
        },
      }),
      { headers },
    );
  };
}

/** The names index.json gives, by tag. */
async function stageNames(stage: string): Promise<Record<string, string>> {
  const index = JSON.parse(await Deno.readTextFile(`${stage}/index.json`));
  return Object.fromEntries(
    index.manifests.map((m: Descriptor) => [
      m.annotations?.[REF_NAME_ANNOTATION],
      m.digest,
    ]),
  );
}

async function stageBlobs(stage: string): Promise<string[]> {
  const names = [];
  for await (const entry of Deno.readDir(`${stage}/blobs/sha256`)) {
    names.push(`sha256:${entry.name}`);
  }
  return names.sort();
}

const PLATFORM = parsePlatform("linux/amd64");

for (const damage of ["flip", "truncate", "reset"] as const) {
  for (const victim of [0, 2]) {
    Deno.test(`a pull whose layer ${victim} is damaged (${damage}) leaves the stage without the image's name; a rerun fetches only that layer`, async () => {
      const work = await Deno.makeTempDir({ prefix: "oci-pull-" });
      try {
        const registry = createRegistry();
        const ref = parseReference("registry.test/app:v1");
        const image = await pushTestImage(work, registry, ref, { seed: "a" });
        const stage = `${work}/stage`;
        const gets: string[] = [];
        await assert.rejects(
          pullImage(ref, `${work}/out`, {
            cache: stage,
            platform: PLATFORM,
            attempts: 1,
            transport: damaging(registry, image.layers[victim], damage, gets),
          }),
          damage === "reset" ? TypeError : DigestMismatchError,
        );
        assert.deepEqual(
          await stageNames(stage),
          {},
          "index.json names no image after a failed pull",
        );
        const kept = await stageBlobs(stage);
        assert.ok(
          !kept.includes(image.layers[victim]),
          "the damaged layer is not kept",
        );
        assert.ok(!kept.includes(image.manifest), "nor is the manifest");
        assert.deepEqual(
          kept,
          [image.config, ...image.layers.filter((_, i) => i !== victim)]
            .sort(),
          "the good blobs are kept, whole, and no temporary file",
        );

        const rerun: string[] = [];
        await pullImage(ref, `${work}/out`, {
          cache: stage,
          platform: PLATFORM,
          transport: damaging(registry, "none", damage, rerun),
        });
        assert.deepEqual(
          rerun,
          [image.layers[victim]],
          "only what was missing",
        );
        assert.deepEqual(await stageNames(stage), { v1: image.manifest });
        for (let i = 0; i < 3; i++) {
          assert.equal(
            await Deno.readTextFile(`${work}/out/file${i}`),
            `a layer ${i}\n`,
          );
        }
      } finally {
        await Deno.remove(work, { recursive: true });
      }
    });
  }
}

Deno.test("a pull whose layer does not match its diff_id (last hex character) leaves the stage without the image's name", async () => {
  const work = await Deno.makeTempDir({ prefix: "oci-pull-" });
  try {
    const registry = createRegistry();
    const ref = parseReference("registry.test/app:v1");
    const image = await pushTestImage(work, registry, ref, {
      seed: "a",
      badDiffId: 1,
    });
    const stage = `${work}/stage`;
    await assert.rejects(
      pullImage(ref, `${work}/out`, {
        cache: stage,
        platform: PLATFORM,
        transport: registry,
      }),
      (e: unknown) =>
        e instanceof DigestMismatchError &&
        /the uncompressed layer/.test(e.message),
    );
    assert.deepEqual(await stageNames(stage), {});
    assert.ok(!(await stageBlobs(stage)).includes(image.manifest));
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("a failed pull of a tag the stage already names leaves the old image named", async () => {
  const work = await Deno.makeTempDir({ prefix: "oci-pull-" });
  try {
    const registry = createRegistry();
    const ref = parseReference("registry.test/app:v1");
    const stage = `${work}/stage`;
    const old = await pushTestImage(work, registry, ref, { seed: "old" });
    await pullImage(ref, `${work}/old`, {
      cache: stage,
      platform: PLATFORM,
      transport: registry,
    });
    assert.deepEqual(await stageNames(stage), { v1: old.manifest });
    // The tag moves to a new image; its last layer arrives damaged.
    const next = await pushTestImage(work, registry, ref, { seed: "new" });
    await assert.rejects(
      pullImage(ref, `${work}/new`, {
        cache: stage,
        platform: PLATFORM,
        attempts: 1,
        transport: damaging(registry, next.layers[2], "flip", []),
      }),
      DigestMismatchError,
    );
    assert.deepEqual(
      await stageNames(stage),
      { v1: old.manifest },
      "v1 still names what was pulled whole",
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
